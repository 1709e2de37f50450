"""gRPC edge of the control plane: servicers, conversions, error mapping, server."""
