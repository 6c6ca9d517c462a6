/// The OpenAPI 3.1 document of the JSON API, served at `/api/openapi.json`.
enum OpenAPIDocument {
    static let json = """
        {"openapi": "3.1.0", "info": {"title": "Conveyor", "version": "1"}, "paths": {}}
        """
}
