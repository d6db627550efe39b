"""corral run's egress supervisor: host names, denied peers, TLS SNI and ALPN.

Nothing in the kernel can check "only api.example.com, only HTTP/2":
seccomp cannot read the address behind connect's pointer, Landlock sees
ports. So for a policy with such rules ``corral run`` stays outside the
sandbox as a supervisor (a parent process the program cannot signal or
ptrace: Landlock scopes both), and the program's filter hands every call
that names a peer to it through seccomp user notification:

- ``notify``: the kernel interface (listener, pidfd_getfd, process memory).
- ``rules``: the decision, in policy terms, and the supervisor's resolver.
- ``relay``: the TLS relay (ClientHello: SNI, ALPN, no ECH) and the HTTP
  CONNECT endpoint.
- ``supervisor``: the fork, the hand-over of the listener, the loop that
  answers notifications by connecting on the program's behalf.

The supervisor never lets a call through after reading memory the program
can still change: it copies the address, decides on its copy, and makes
the call itself on the program's socket (taken with pidfd_getfd).
"""
