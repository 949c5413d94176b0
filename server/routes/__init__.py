"""REST handlers by resource: decode the request, call a service, encode the answer."""
