/// The HTTP side of Conveyor: `conveyor serve` (dashboard, JSON API, `/metrics`) and the worker's metrics and health
/// endpoint.
public enum ConveyorServe {}
