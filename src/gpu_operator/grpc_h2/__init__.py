"""gRPC over HTTP/2 without grpcio: a unary client and a small server, spoken with the pure-Python
``h2`` package on unix sockets, for the kubelet's APIs (issue 15: grpcio costs an agent ~15 MiB
and ~20 threads for a handful of calls).

``status``: the status codes and the error a call ends with; ``client``: one unary call;
``server``: unary and server-streaming methods served on a unix socket. Messages are bytes here;
the callers (de)serialize them with the generated protobuf classes. The wire format is gRPC's
(``PROTOCOL-HTTP2.md``): a POST per call, a 5-byte prefix per message, the status in the
``grpc-status`` / ``grpc-message`` trailers.
"""
