/// The OpenAPI document of the JSON API, served at `/api/openapi.json`.
///
/// It is OpenAPI 3.0.3, not 3.1: the tools that check a server against its document (schemathesis,
/// openapi-spec-validator) handle 3.0 best. `ServeOpenAPITests` validates it and runs schemathesis against a live
/// `conveyor serve`, so a route, field or status added to the server without its place here fails a test.
///
/// Times are epoch milliseconds; names are snake_case like the job hash. Request bodies are read strictly: an
/// unknown field, a value of the wrong type or out of range is `400 invalidArgument`; `null` counts as absent.
enum OpenAPIDocument {
    static let json = #"""
        {
          "openapi": "3.0.3",
          "info": {
            "title": "Conveyor",
            "version": "1",
            "description": "The JSON API of conveyor serve: queues, jobs, schedules, workers and the scheduler leader of one Conveyor namespace in Redis. Every failure is a JSON error {\"error\": {\"code\", \"message\"}} with an HTTP status; the codes are those of ConveyorError (invalidArgument, jobNotFound, invalidState, duplicate, malformedJob) plus queueNotFound, scheduleNotFound and the HTTP layer's (unauthorized, forbidden, readOnly, csrf, notFound, methodNotAllowed, payloadTooLarge). Authenticate with Authorization: Bearer <CONVEYOR_SERVE_TOKEN> (or Basic user:password); a change authenticated by the dashboard's session cookie must also send X-CSRF-Token. On a server started with --read-only every change answers 403 readOnly."
          },
          "security": [{"bearer": []}, {"basic": []}],
          "tags": [
            {"name": "queues"}, {"name": "jobs"}, {"name": "schedules"}, {"name": "cluster"}, {"name": "meta"}
          ],
          "paths": {
            "/health": {
              "get": {
                "tags": ["meta"],
                "operationId": "health",
                "summary": "Liveness (needs no credentials)",
                "security": [],
                "responses": {
                  "200": {
                    "description": "The server runs",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["status"], "additionalProperties": false,
                      "properties": {"status": {"type": "string", "enum": ["ok"]}}
                    }}}
                  }
                }
              }
            },
            "/health/live": {
              "get": {
                "tags": ["meta"],
                "operationId": "healthLive",
                "summary": "Liveness for probes (needs no credentials)",
                "security": [],
                "responses": {
                  "200": {
                    "description": "The process answers",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["status"], "additionalProperties": false,
                      "properties": {"status": {"type": "string", "enum": ["live"]}}
                    }}}
                  }
                }
              }
            },
            "/health/ready": {
              "get": {
                "tags": ["meta"],
                "operationId": "healthReady",
                "summary": "Readiness: Redis answers within 2 s with this build's function library (needs no credentials)",
                "security": [],
                "responses": {
                  "200": {
                    "description": "Ready",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["status", "library"], "additionalProperties": false,
                      "properties": {"status": {"type": "string", "enum": ["ready"]}, "library": {"type": "string"}}
                    }}}
                  },
                  "503": {
                    "description": "Not ready, and why (Redis unreachable or slow, no library or another version, shutting down)",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["status", "reason"], "additionalProperties": false,
                      "properties": {"status": {"type": "string", "enum": ["unready"]}, "reason": {"type": "string"}}
                    }}}
                  }
                }
              }
            },
            "/metrics": {
              "get": {
                "tags": ["meta"],
                "operationId": "metrics",
                "summary": "Prometheus text: this process's metrics and Redis's state read at scrape time",
                "responses": {
                  "200": {
                    "description": "Prometheus text format 0.0.4",
                    "content": {"text/plain": {"schema": {"type": "string"}}}
                  },
                  "401": {"$ref": "#/components/responses/Unauthorized"}
                }
              }
            },
            "/api/openapi.json": {
              "get": {
                "tags": ["meta"],
                "operationId": "openAPIDocument",
                "summary": "This document",
                "responses": {
                  "200": {
                    "description": "The OpenAPI document",
                    "content": {"application/json": {"schema": {"type": "object", "required": ["openapi", "paths"]}}}
                  },
                  "401": {"$ref": "#/components/responses/Unauthorized"}
                }
              }
            },
            "/api/queues": {
              "get": {
                "tags": ["queues"],
                "operationId": "listQueues",
                "summary": "Every queue of the namespace with its counts",
                "responses": {
                  "200": {
                    "description": "The queues",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["queues"], "additionalProperties": false,
                      "properties": {"queues": {"type": "array", "items": {"$ref": "#/components/schemas/QueueSummary"}}}
                    }}}
                  },
                  "401": {"$ref": "#/components/responses/Unauthorized"}
                }
              }
            },
            "/api/queues/{queue}": {
              "parameters": [{"$ref": "#/components/parameters/QueuePath"}],
              "get": {
                "tags": ["queues"],
                "operationId": "getQueue",
                "summary": "One queue: counts by status, counters, paused, latency",
                "responses": {
                  "200": {
                    "description": "The queue",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/QueueSummary"}}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/api/queues/{queue}/pause": {
              "parameters": [{"$ref": "#/components/parameters/QueuePath"}],
              "post": {
                "tags": ["queues"],
                "operationId": "pauseQueue",
                "summary": "Pause a queue: workers claim nothing from it until it is resumed",
                "responses": {
                  "200": {"$ref": "#/components/responses/Paused"},
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/api/queues/{queue}/resume": {
              "parameters": [{"$ref": "#/components/parameters/QueuePath"}],
              "post": {
                "tags": ["queues"],
                "operationId": "resumeQueue",
                "summary": "Resume a paused queue",
                "responses": {
                  "200": {"$ref": "#/components/responses/Paused"},
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/api/queues/{queue}/retry-failed": {
              "parameters": [{"$ref": "#/components/parameters/QueuePath"}],
              "post": {
                "tags": ["queues"],
                "operationId": "retryAll",
                "summary": "Retry every job of a queue in one status (failed by default)",
                "parameters": [{
                  "name": "status", "in": "query", "required": false,
                  "schema": {"type": "string", "enum": ["failed", "cancelled", "retrying", "scheduled"], "default": "failed"}
                }],
                "responses": {
                  "200": {
                    "description": "How many were retried and how many skipped",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["queue", "status", "retried", "skipped"], "additionalProperties": false,
                      "properties": {
                        "queue": {"type": "string"},
                        "status": {"$ref": "#/components/schemas/JobStatus"},
                        "retried": {"type": "integer", "minimum": 0},
                        "skipped": {"type": "integer", "minimum": 0}
                      }
                    }}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/api/queues/{queue}/throughput": {
              "parameters": [{"$ref": "#/components/parameters/QueuePath"}],
              "get": {
                "tags": ["queues"],
                "operationId": "throughput",
                "summary": "Jobs completed and failed in a recent window",
                "parameters": [{
                  "name": "window_ms", "in": "query", "required": false,
                  "schema": {"type": "integer", "minimum": 1000, "maximum": 86400000, "default": 60000}
                }],
                "responses": {
                  "200": {
                    "description": "The throughput",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["queue", "completed", "failed", "covered_ms"], "additionalProperties": false,
                      "properties": {
                        "queue": {"type": "string"},
                        "completed": {"type": "integer", "minimum": 0},
                        "failed": {"type": "integer", "minimum": 0},
                        "covered_ms": {"type": "integer", "minimum": 0, "description": "How much of the window the counters cover"}
                      }
                    }}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/api/queues/{queue}/history": {
              "parameters": [{"$ref": "#/components/parameters/QueuePath"}],
              "get": {
                "tags": ["queues"],
                "operationId": "history",
                "summary": "Per-minute counters (enqueued, started, completed, failed, retried, stalled, cancelled)",
                "parameters": [{
                  "name": "minutes", "in": "query", "required": false,
                  "schema": {"type": "integer", "minimum": 1, "maximum": 1440, "default": 60}
                }],
                "responses": {
                  "200": {
                    "description": "One entry per minute, oldest first",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["queue", "minutes"], "additionalProperties": false,
                      "properties": {
                        "queue": {"type": "string"},
                        "minutes": {"type": "array", "items": {
                          "type": "object", "required": ["minute", "counts"], "additionalProperties": false,
                          "properties": {
                            "minute": {"type": "integer", "description": "When the minute began (epoch ms)"},
                            "counts": {"$ref": "#/components/schemas/Counters"}
                          }
                        }}
                      }
                    }}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/api/jobs": {
              "get": {
                "tags": ["jobs"],
                "operationId": "listJobs",
                "summary": "Find jobs: by id, by reference (reference_type and reference_id), or a page of one status",
                "description": "Every parameter is checked first. Then: with id, the job of that full id (none or one); with reference_type and reference_id, the jobs with that reference; otherwise status is required and the answer is a page of the queue's jobs in that status (with offset, limit and total).",
                "parameters": [
                  {"name": "id", "in": "query", "required": false, "description": "A full job id <queue>/<id>", "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}/[A-Za-z0-9_.:@-]{1,200}$"}},
                  {"name": "reference_type", "in": "query", "required": false, "schema": {"$ref": "#/components/schemas/ReferenceType"}},
                  {"name": "reference_id", "in": "query", "required": false, "schema": {"$ref": "#/components/schemas/ReferenceID"}},
                  {"name": "status", "in": "query", "required": false, "schema": {"$ref": "#/components/schemas/JobStatus"}},
                  {"name": "queue", "in": "query", "required": false, "description": "The default queue when absent", "schema": {"$ref": "#/components/schemas/QueueName"}},
                  {"name": "type", "in": "query", "required": false, "description": "Only jobs of this type", "schema": {"type": "string"}},
                  {"name": "offset", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0, "maximum": 1000000000, "default": 0}},
                  {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}},
                  {"name": "order", "in": "query", "required": false, "schema": {"type": "string", "enum": ["oldest", "newest"], "default": "oldest"}}
                ],
                "responses": {
                  "200": {
                    "description": "The jobs found",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["jobs"], "additionalProperties": false,
                      "properties": {
                        "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
                        "offset": {"type": "integer", "minimum": 0},
                        "limit": {"type": "integer", "minimum": 1},
                        "total": {"type": "integer", "minimum": 0, "description": "How many jobs the queue has in that status"}
                      }
                    }}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"}
                }
              },
              "post": {
                "tags": ["jobs"],
                "operationId": "enqueue",
                "summary": "Enqueue a job",
                "requestBody": {
                  "required": true,
                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewJob"}}}
                },
                "responses": {
                  "201": {
                    "description": "Created",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EnqueuedJob"}}}
                  },
                  "200": {
                    "description": "Nothing created: a job with that id exists (outcome existing) or a live job holds the unique_key (outcome duplicate, with that job's id)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EnqueuedJob"}}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "413": {"$ref": "#/components/responses/PayloadTooLarge"}
                }
              }
            },
            "/api/jobs/bulk": {
              "post": {
                "tags": ["jobs"],
                "operationId": "enqueueBulk",
                "summary": "Enqueue 1 to 1000 jobs; when one is invalid, none is enqueued",
                "requestBody": {
                  "required": true,
                  "content": {"application/json": {"schema": {
                    "type": "object", "required": ["jobs"], "additionalProperties": false,
                    "properties": {"jobs": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"$ref": "#/components/schemas/NewJob"}}}
                  }}}
                },
                "responses": {
                  "201": {
                    "description": "What each job's enqueue did, in order",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["jobs"], "additionalProperties": false,
                      "properties": {"jobs": {"type": "array", "items": {"$ref": "#/components/schemas/EnqueuedJob"}}}
                    }}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "413": {"$ref": "#/components/responses/PayloadTooLarge"}
                }
              }
            },
            "/api/jobs/{queue}/{id}": {
              "parameters": [{"$ref": "#/components/parameters/QueuePath"}, {"$ref": "#/components/parameters/JobIDPath"}],
              "get": {
                "tags": ["jobs"],
                "operationId": "getJob",
                "summary": "One job, with its progress",
                "responses": {
                  "200": {
                    "description": "The job",
                    "content": {"application/json": {"schema": {"allOf": [
                      {"$ref": "#/components/schemas/Job"},
                      {"type": "object", "required": ["progress"], "properties": {"progress": {"nullable": true, "description": "The last progress the handler reported (any JSON value), or null"}}}
                    ]}}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "404": {"$ref": "#/components/responses/NotFound"},
                  "422": {"$ref": "#/components/responses/MalformedJob"}
                }
              },
              "delete": {
                "tags": ["jobs"],
                "operationId": "removeJob",
                "summary": "Remove a job (a processing one only with force)",
                "parameters": [{"name": "force", "in": "query", "required": false, "schema": {"type": "boolean", "default": false}}],
                "responses": {
                  "200": {
                    "description": "Removed",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["id", "removed"], "additionalProperties": false,
                      "properties": {"id": {"type": "string"}, "removed": {"type": "boolean", "enum": [true]}}
                    }}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"},
                  "409": {"$ref": "#/components/responses/Conflict"}
                }
              }
            },
            "/api/jobs/{queue}/{id}/events": {
              "parameters": [{"$ref": "#/components/parameters/QueuePath"}, {"$ref": "#/components/parameters/JobIDPath"}],
              "get": {
                "tags": ["jobs"],
                "operationId": "jobEvents",
                "summary": "A job's transitions, oldest first",
                "responses": {
                  "200": {
                    "description": "The events",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["events"], "additionalProperties": false,
                      "properties": {"events": {"type": "array", "items": {"$ref": "#/components/schemas/JobEvent"}}}
                    }}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/api/jobs/{queue}/{id}/retry": {
              "parameters": [{"$ref": "#/components/parameters/QueuePath"}, {"$ref": "#/components/parameters/JobIDPath"}],
              "post": {
                "tags": ["jobs"],
                "operationId": "retryJob",
                "summary": "Make a failed, cancelled, retrying or scheduled job pending now",
                "responses": {
                  "200": {
                    "description": "Pending",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["id", "status"], "additionalProperties": false,
                      "properties": {"id": {"type": "string"}, "status": {"type": "string", "enum": ["pending"]}}
                    }}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"},
                  "409": {"$ref": "#/components/responses/Conflict"}
                }
              }
            },
            "/api/jobs/{queue}/{id}/cancel": {
              "parameters": [{"$ref": "#/components/parameters/QueuePath"}, {"$ref": "#/components/parameters/JobIDPath"}],
              "post": {
                "tags": ["jobs"],
                "operationId": "cancelJob",
                "summary": "Cancel a job (a processing one is asked to stop: cancel_requested)",
                "responses": {
                  "200": {
                    "description": "Cancelled, or asked to stop",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["id", "status", "cancel_requested"], "additionalProperties": false,
                      "properties": {
                        "id": {"type": "string"},
                        "status": {"$ref": "#/components/schemas/JobStatus"},
                        "cancel_requested": {"type": "boolean"}
                      }
                    }}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"},
                  "409": {"$ref": "#/components/responses/Conflict"}
                }
              }
            },
            "/api/schedules": {
              "get": {
                "tags": ["schedules"],
                "operationId": "listSchedules",
                "summary": "Every schedule",
                "responses": {
                  "200": {
                    "description": "The schedules",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["schedules"], "additionalProperties": false,
                      "properties": {"schedules": {"type": "array", "items": {"$ref": "#/components/schemas/Schedule"}}}
                    }}}
                  },
                  "401": {"$ref": "#/components/responses/Unauthorized"}
                }
              },
              "post": {
                "tags": ["schedules"],
                "operationId": "upsertSchedule",
                "summary": "Add or change a schedule (its queue and name identify it)",
                "requestBody": {
                  "required": true,
                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewSchedule"}}}
                },
                "responses": {
                  "201": {"$ref": "#/components/responses/ScheduleUpserted"},
                  "200": {"$ref": "#/components/responses/ScheduleUpserted"},
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "413": {"$ref": "#/components/responses/PayloadTooLarge"}
                }
              }
            },
            "/api/schedules/{queue}/{name}": {
              "parameters": [{"$ref": "#/components/parameters/QueuePath"}, {"$ref": "#/components/parameters/ScheduleNamePath"}],
              "delete": {
                "tags": ["schedules"],
                "operationId": "removeSchedule",
                "summary": "Remove a schedule",
                "responses": {
                  "200": {"$ref": "#/components/responses/ScheduleChanged"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/api/schedules/{queue}/{name}/pause": {
              "parameters": [{"$ref": "#/components/parameters/QueuePath"}, {"$ref": "#/components/parameters/ScheduleNamePath"}],
              "post": {
                "tags": ["schedules"],
                "operationId": "pauseSchedule",
                "summary": "Pause a schedule",
                "responses": {
                  "200": {"$ref": "#/components/responses/ScheduleChanged"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/api/schedules/{queue}/{name}/resume": {
              "parameters": [{"$ref": "#/components/parameters/QueuePath"}, {"$ref": "#/components/parameters/ScheduleNamePath"}],
              "post": {
                "tags": ["schedules"],
                "operationId": "resumeSchedule",
                "summary": "Resume a paused schedule",
                "responses": {
                  "200": {"$ref": "#/components/responses/ScheduleChanged"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/api/schedules/{queue}/{name}/run": {
              "parameters": [{"$ref": "#/components/parameters/QueuePath"}, {"$ref": "#/components/parameters/ScheduleNamePath"}],
              "post": {
                "tags": ["schedules"],
                "operationId": "runSchedule",
                "summary": "Enqueue the schedule's job now (the schedule itself is unchanged)",
                "responses": {
                  "201": {
                    "description": "The job enqueued",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["name", "queue", "job"], "additionalProperties": false,
                      "properties": {
                        "name": {"type": "string"},
                        "queue": {"type": "string"},
                        "job": {"$ref": "#/components/schemas/EnqueuedJob"}
                      }
                    }}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"},
                  "403": {"$ref": "#/components/responses/Forbidden"},
                  "404": {"$ref": "#/components/responses/NotFound"}
                }
              }
            },
            "/api/workers": {
              "get": {
                "tags": ["cluster"],
                "operationId": "listWorkers",
                "summary": "The live workers",
                "responses": {
                  "200": {
                    "description": "The workers",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["workers"], "additionalProperties": false,
                      "properties": {"workers": {"type": "array", "items": {"$ref": "#/components/schemas/Worker"}}}
                    }}}
                  },
                  "401": {"$ref": "#/components/responses/Unauthorized"}
                }
              }
            },
            "/api/leader": {
              "get": {
                "tags": ["cluster"],
                "operationId": "leader",
                "summary": "The scheduler leader, or null",
                "responses": {
                  "200": {
                    "description": "The leader",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["leader"], "additionalProperties": false,
                      "properties": {"leader": {"$ref": "#/components/schemas/Leader"}}
                    }}}
                  },
                  "401": {"$ref": "#/components/responses/Unauthorized"}
                }
              }
            },
            "/api/stats": {
              "get": {
                "tags": ["cluster"],
                "operationId": "stats",
                "summary": "Everything at once: queues (with the last minute's throughput), workers, leader",
                "responses": {
                  "200": {
                    "description": "The statistics",
                    "content": {"application/json": {"schema": {
                      "type": "object", "required": ["queues", "workers", "leader"], "additionalProperties": false,
                      "properties": {
                        "queues": {"type": "array", "items": {"allOf": [
                          {"$ref": "#/components/schemas/QueueSummary"},
                          {"type": "object", "required": ["last_minute"], "properties": {"last_minute": {
                            "type": "object", "required": ["completed", "failed"], "additionalProperties": false,
                            "properties": {"completed": {"type": "integer", "minimum": 0}, "failed": {"type": "integer", "minimum": 0}}
                          }}}
                        ]}},
                        "workers": {"type": "array", "items": {"$ref": "#/components/schemas/Worker"}},
                        "leader": {"$ref": "#/components/schemas/Leader"}
                      }
                    }}}
                  },
                  "401": {"$ref": "#/components/responses/Unauthorized"}
                }
              }
            },
            "/api/events": {
              "get": {
                "tags": ["cluster"],
                "operationId": "liveEvents",
                "summary": "Live transitions as Server-Sent Events (an open stream: one 'jobs' event per batch, data a JSON array of JobEvent)",
                "parameters": [{
                  "name": "queue", "in": "query", "required": false, "description": "The queues to follow (every queue when absent); repeat for more",
                  "style": "form", "explode": true,
                  "schema": {"type": "array", "items": {"$ref": "#/components/schemas/QueueName"}}
                }],
                "responses": {
                  "200": {
                    "description": "The stream, until the client leaves",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}}
                  },
                  "400": {"$ref": "#/components/responses/BadRequest"},
                  "401": {"$ref": "#/components/responses/Unauthorized"}
                }
              }
            }
          },
          "components": {
            "securitySchemes": {
              "bearer": {"type": "http", "scheme": "bearer", "description": "CONVEYOR_SERVE_TOKEN"},
              "basic": {"type": "http", "scheme": "basic", "description": "CONVEYOR_SERVE_USER and CONVEYOR_SERVE_PASSWORD"}
            },
            "parameters": {
              "QueuePath": {
                "name": "queue", "in": "path", "required": true, "example": "mail",
                "schema": {"$ref": "#/components/schemas/QueueName"}
              },
              "JobIDPath": {
                "name": "id", "in": "path", "required": true, "description": "The job's id within its queue", "example": "welcome-1",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:@-]{1,200}$"}
              },
              "ScheduleNamePath": {
                "name": "name", "in": "path", "required": true, "example": "nightly",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,100}$"}
              }
            },
            "responses": {
              "BadRequest": {"description": "invalidArgument: a bad parameter or body, named in the message", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Unauthorized": {
                "description": "unauthorized: no or wrong credentials",
                "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
              },
              "Forbidden": {"description": "readOnly (the server was started with --read-only) or csrf (a cookie-authenticated change without X-CSRF-Token)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "NotFound": {"description": "jobNotFound, queueNotFound or scheduleNotFound", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Conflict": {"description": "invalidState: the job is not in a state that allows this", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "PayloadTooLarge": {"description": "payloadTooLarge: the body is over the server's limit (8 MiB by default)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "MalformedJob": {"description": "malformedJob: the job's hash in Redis is damaged", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
              "Paused": {
                "description": "The queue's new state",
                "content": {"application/json": {"schema": {
                  "type": "object", "required": ["queue", "paused"], "additionalProperties": false,
                  "properties": {"queue": {"type": "string"}, "paused": {"type": "boolean"}}
                }}}
              },
              "ScheduleUpserted": {
                "description": "201: created; 200: updated or unchanged",
                "content": {"application/json": {"schema": {
                  "type": "object", "required": ["name", "queue", "outcome", "next_run_at"], "additionalProperties": false,
                  "properties": {
                    "name": {"type": "string"},
                    "queue": {"type": "string"},
                    "outcome": {"type": "string", "enum": ["created", "updated", "unchanged"]},
                    "next_run_at": {"type": "integer", "nullable": true}
                  }
                }}}
              },
              "ScheduleChanged": {
                "description": "Done",
                "content": {"application/json": {"schema": {
                  "type": "object", "required": ["name", "queue", "action"], "additionalProperties": false,
                  "properties": {
                    "name": {"type": "string"},
                    "queue": {"type": "string"},
                    "action": {"type": "string", "enum": ["pause", "resume", "remove"]}
                  }
                }}}
              }
            },
            "schemas": {
              "Error": {
                "type": "object", "required": ["error"], "additionalProperties": false,
                "properties": {"error": {
                  "type": "object", "required": ["code", "message"], "additionalProperties": false,
                  "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string", "minLength": 1},
                    "job_id": {"type": "string"}
                  }
                }}
              },
              "QueueName": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
              "JobStatus": {"type": "string", "enum": ["scheduled", "pending", "processing", "retrying", "completed", "failed", "cancelled"]},
              "JobType": {"type": "string", "pattern": "^[A-Za-z0-9_.:/-]{1,128}$"},
              "ReferenceType": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
              "ReferenceID": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^\\x00-\\x1F\\x7F]*$", "description": "At most 256 bytes of UTF-8, no control characters"},
              "Counters": {"type": "object", "additionalProperties": {"type": "integer"}},
              "QueueSummary": {
                "type": "object", "required": ["queue", "counts", "stats", "paused", "latency_ms"],
                "properties": {
                  "queue": {"type": "string"},
                  "counts": {"$ref": "#/components/schemas/Counters"},
                  "stats": {"$ref": "#/components/schemas/Counters"},
                  "paused": {"type": "boolean"},
                  "latency_ms": {"type": "integer", "minimum": 0, "description": "Age of the oldest pending job"}
                }
              },
              "Job": {
                "type": "object",
                "required": ["id", "queue", "type", "status", "retry_count", "max_retries", "priority", "attempts", "payload", "stalls", "cancel_requested", "failed_permanently"],
                "properties": {
                  "id": {"type": "string", "description": "The full id <queue>/<id>"},
                  "queue": {"type": "string"},
                  "type": {"type": "string"},
                  "status": {"$ref": "#/components/schemas/JobStatus"},
                  "retry_count": {"type": "integer"},
                  "max_retries": {"type": "integer"},
                  "priority": {"type": "integer"},
                  "attempts": {"type": "integer"},
                  "payload": {"description": "Any JSON value (the text itself when it is not JSON)"},
                  "result": {"description": "Any JSON value (the text itself when it is not JSON)"},
                  "error": {"type": "string"},
                  "reference": {
                    "type": "object", "required": ["type", "id"], "additionalProperties": false,
                    "properties": {"type": {"type": "string"}, "id": {"type": "string"}}
                  },
                  "run_at": {"type": "integer"},
                  "created_at": {"type": "integer"},
                  "started_at": {"type": "integer"},
                  "finished_at": {"type": "integer"},
                  "updated_at": {"type": "integer"},
                  "worker": {"type": "string"},
                  "stalls": {"type": "integer"},
                  "cancel_requested": {"type": "boolean"},
                  "failed_permanently": {"type": "boolean"},
                  "timeout_ms": {"type": "integer"},
                  "unique_key": {"type": "string"}
                }
              },
              "NewJob": {
                "type": "object", "required": ["type"], "additionalProperties": false,
                "description": "Give run_at or delay_ms, not both. An id may be the full id <queue>/<id> when its queue is the job's.",
                "properties": {
                  "type": {"$ref": "#/components/schemas/JobType"},
                  "payload": {"description": "Any JSON value ({} when absent)"},
                  "queue": {"type": "string", "nullable": true, "pattern": "^[A-Za-z0-9_.-]{1,64}$", "description": "The default queue when absent"},
                  "id": {"type": "string", "nullable": true, "pattern": "^([A-Za-z0-9_.-]{1,64}/)?[A-Za-z0-9_.:@-]{1,200}$", "description": "A new id is made when absent"},
                  "priority": {"type": "integer", "nullable": true, "minimum": -100, "maximum": 100, "default": 0},
                  "run_at": {"type": "integer", "nullable": true, "minimum": 0, "maximum": 253402300799000, "description": "When to run (epoch ms)"},
                  "delay_ms": {"type": "integer", "nullable": true, "minimum": 0, "maximum": 315360000000},
                  "max_retries": {"type": "integer", "nullable": true, "minimum": 0, "maximum": 10000},
                  "timeout_ms": {"type": "integer", "nullable": true, "minimum": 1, "maximum": 2592000000},
                  "reference": {
                    "type": "object", "nullable": true, "required": ["type", "id"], "additionalProperties": false,
                    "properties": {"type": {"$ref": "#/components/schemas/ReferenceType"}, "id": {"$ref": "#/components/schemas/ReferenceID"}}
                  },
                  "unique_key": {"type": "string", "nullable": true, "minLength": 1, "maxLength": 256, "pattern": "^[^\\x00-\\x1F\\x7F]*$", "description": "While a live job holds this key, enqueuing another with it creates nothing"}
                }
              },
              "EnqueuedJob": {
                "type": "object", "required": ["id", "outcome", "status"], "additionalProperties": false,
                "properties": {
                  "id": {"type": "string"},
                  "outcome": {"type": "string", "enum": ["created", "existing", "duplicate"]},
                  "status": {"$ref": "#/components/schemas/JobStatus"}
                }
              },
              "JobEvent": {
                "type": "object", "required": ["stream_id", "queue", "id", "type", "from", "to", "at"], "additionalProperties": false,
                "properties": {
                  "stream_id": {"type": "string"},
                  "queue": {"type": "string"},
                  "id": {"type": "string"},
                  "type": {"type": "string"},
                  "from": {"type": "string", "nullable": true, "enum": ["scheduled", "pending", "processing", "retrying", "completed", "failed", "cancelled", null], "description": "null when the job was created"},
                  "to": {"type": "string", "enum": ["scheduled", "pending", "processing", "retrying", "completed", "failed", "cancelled", "removed"]},
                  "at": {"type": "integer"},
                  "error": {"type": "string"}
                }
              },
              "Schedule": {
                "type": "object", "required": ["name", "type", "queue", "priority", "payload", "paused", "next_run_at", "last_run_at"], "additionalProperties": false,
                "description": "every_ms for an interval, or cron and time_zone",
                "properties": {
                  "name": {"type": "string"},
                  "type": {"type": "string"},
                  "queue": {"type": "string"},
                  "priority": {"type": "integer"},
                  "payload": {"description": "Any JSON value"},
                  "paused": {"type": "boolean"},
                  "next_run_at": {"type": "integer", "nullable": true},
                  "last_run_at": {"type": "integer", "nullable": true},
                  "every_ms": {"type": "integer"},
                  "cron": {"type": "string"},
                  "time_zone": {"type": "string"},
                  "max_retries": {"type": "integer"}
                }
              },
              "NewSchedule": {
                "type": "object", "required": ["name", "type"], "additionalProperties": false,
                "description": "Give every_ms or cron (one of them); time_zone (an IANA name, UTC by default) goes with cron.",
                "anyOf": [{"required": ["every_ms"]}, {"required": ["cron"]}],
                "properties": {
                  "name": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,100}$"},
                  "type": {"$ref": "#/components/schemas/JobType"},
                  "payload": {"description": "Any JSON value ({} when absent)"},
                  "queue": {"type": "string", "nullable": true, "pattern": "^[A-Za-z0-9_.-]{1,64}$", "description": "The default queue when absent"},
                  "every_ms": {"type": "integer", "nullable": true, "minimum": 1000, "maximum": 315360000000},
                  "cron": {"type": "string", "nullable": true, "example": "0 3 * * *", "description": "Five fields: minute hour day-of-month month day-of-week"},
                  "time_zone": {"type": "string", "nullable": true, "example": "Europe/Berlin"},
                  "priority": {"type": "integer", "nullable": true, "minimum": -100, "maximum": 100, "default": 0},
                  "max_retries": {"type": "integer", "nullable": true, "minimum": 0, "maximum": 10000},
                  "timeout_ms": {"type": "integer", "nullable": true, "minimum": 1, "maximum": 2592000000}
                }
              },
              "Worker": {
                "type": "object", "required": ["id", "host", "pid", "queues", "concurrency", "in_flight", "started_at", "last_heartbeat"], "additionalProperties": false,
                "properties": {
                  "id": {"type": "string"},
                  "host": {"type": "string"},
                  "pid": {"type": "integer"},
                  "queues": {"type": "array", "items": {"type": "string"}},
                  "concurrency": {"type": "integer"},
                  "in_flight": {"type": "array", "items": {"type": "string"}, "description": "The full ids of the jobs it runs"},
                  "started_at": {"type": "integer"},
                  "last_heartbeat": {"type": "integer"}
                }
              },
              "Leader": {
                "type": "object", "nullable": true, "required": ["node", "epoch", "info", "since", "expires_at"], "additionalProperties": false,
                "properties": {
                  "node": {"type": "string"},
                  "epoch": {"type": "integer"},
                  "info": {"type": "object", "additionalProperties": {"type": "string"}},
                  "since": {"type": "integer"},
                  "expires_at": {"type": "integer"}
                }
              }
            }
          }
        }
        """#
}
