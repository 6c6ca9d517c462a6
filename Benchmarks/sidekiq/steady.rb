# Steady-rate reference for `conveyor-bench cost --mode steady`: Sidekiq 6.4 (Debian's ruby-sidekiq), one worker
# process (sidekiq -c CONCURRENCY), fed with Sidekiq::Client.push at RATE jobs/s; after a 1 s warm-up it measures a
# SECONDS window (idle gaps between jobs included) and prints one JSON line: Redis CPU per job (the server's own
# used_cpu_user + used_cpu_sys from INFO, cross-checked with /proc/PID/stat when the server is local), Redis
# commands per job (total_commands_processed, the harness's own INFO calls taken out), the Sidekiq worker's CPU per
# 10 000 jobs (/proc/PID/stat) and enqueue→start latency p50/p99.
#
#   REDIS_URL=redis://127.0.0.1:PORT/0 ruby steady.rb [RATE=500] [SECONDS=10] [CONCURRENCY=10]
#
# FLUSHALLs that Redis first: give it a throwaway server.
require_relative "steady_job"
require "sidekiq/api"
require "json"
require "tmpdir"

rate = Integer(ARGV.fetch(0, "500"))
seconds = Integer(ARGV.fetch(1, "10"))
concurrency = Integer(ARGV.fetch(2, "10"))
warmup = rate
window = rate * seconds

def redis_info
  Sidekiq.redis { |conn| conn.info }
end

def cpu_ticks(pid)
  fields = File.read("/proc/#{pid}/stat").split(")").last.split
  Integer(fields[11]) + Integer(fields[12])
rescue SystemCallError
  nil
end

Snapshot = Struct.new(:cpu_us, :proc_ticks, :commands, :worker_ticks)
hz = Integer(`getconf CLK_TCK`)

Sidekiq.redis { |conn| conn.flushall }
redis_pid = Integer(redis_info.fetch("process_id"))
redis_local = File.exist?("/proc/#{redis_pid}/comm") && File.read("/proc/#{redis_pid}/comm").start_with?("redis")

work = Dir.mktmpdir("sidekiq-steady")
record = File.join(work, "record")
File.write(record, "")
worker = Process.spawn(
  {"STEADY_REC" => record},
  "sidekiq", "-r", File.join(__dir__, "steady_job.rb"), "-c", concurrency.to_s, "-q", "default",
  out: File.join(work, "sidekiq.log"), err: [:child, :out]
)

begin
  # Sidekiq takes a while to boot: wait until its process has registered, then give it a second, as Conveyor's
  # steady mode gives its worker.
  deadline = Time.now + 60
  until Sidekiq::ProcessSet.new.size > 0
    raise "sidekiq did not start: #{File.read(File.join(work, "sidekiq.log"))[-500..]}" if Time.now > deadline
    sleep 0.05
  end
  sleep 1

  # Every snapshot is one INFO, which the next one sees as one command.
  snapshot = lambda do
    info = redis_info
    Snapshot.new(
      ((Float(info.fetch("used_cpu_user")) + Float(info.fetch("used_cpu_sys"))) * 1e6).round,
      redis_local ? cpu_ticks(redis_pid) : nil,
      Integer(info.fetch("total_commands_processed")),
      cpu_ticks(worker)
    )
  end

  interval = 1.0 / rate
  start = nil
  next_at = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  (warmup + window).times do |seq|
    start = snapshot.call if seq == warmup
    pause = next_at - Process.clock_gettime(Process::CLOCK_MONOTONIC)
    sleep(pause) if pause > 0
    Sidekiq::Client.push("class" => SteadyJob, "args" => [seq, Process.clock_gettime(Process::CLOCK_REALTIME, :nanosecond)])
    next_at += interval
  end
  # The window ends one interval after its last push: `window` slots, gaps included.
  pause = next_at - Process.clock_gettime(Process::CLOCK_MONOTONIC)
  sleep(pause) if pause > 0
  finish = snapshot.call
  window_seconds = window * interval

  deadline = Time.now + 120
  until File.foreach(record).count >= warmup + window
    raise "jobs did not complete within 120 s" if Time.now > deadline
    sleep 0.05
  end
  latencies = File.foreach(record).filter_map do |line|
    seq, enqueued, started = line.split.map { |field| Integer(field) }
    (started - enqueued) / 1e6 if seq >= warmup
  end.sort
  quantile = ->(q) { latencies[[[(latencies.size * q).ceil - 1, 0].max, latencies.size - 1].min] }

  per_job = ->(value) { (value.to_f / window).round(3) }
  figures = {
    "peer" => "sidekiq", "mode" => "steady", "rate" => rate, "seconds" => seconds, "concurrency" => concurrency,
    "jobs" => window, "jobs_per_second" => (window / window_seconds).round,
    "redis_cpu_us_per_job" => per_job.call(finish.cpu_us - start.cpu_us),
    "commands_per_job" => per_job.call(finish.commands - start.commands - 1),
    "worker_cpu_s_per_10k_jobs" => ((finish.worker_ticks - start.worker_ticks).to_f / hz / window * 10_000).round(3),
    "p50_ms" => quantile.call(0.5).round(3), "p99_ms" => quantile.call(0.99).round(3)
  }
  if start.proc_ticks && finish.proc_ticks
    figures["redis_proc_cpu_us_per_job"] = per_job.call((finish.proc_ticks - start.proc_ticks) * 1e6 / hz)
  end
  puts JSON.generate(figures)
ensure
  Process.kill("TERM", worker) rescue nil
  Process.wait(worker) rescue nil
  FileUtils.rm_rf(work)
end
