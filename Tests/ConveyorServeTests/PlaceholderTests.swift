import Testing

@testable import ConveyorServe
