"""The reference cluster node: the system the harness tests when no other is named.

It behaves like an Integration Server node as far as the contract goes: services under
`/invoke/<folder>:<service>` over HTTP and HTTPS, an FTP inbox and SMTP addresses that invoke
services, shared state and membership in Redis (Terracotta's role), packages per node with a
manifest, node-level 302 redirection with an exclusion list in `redir.cnf`, and per-node
connection pools to a back end. Mutant switches (see `harness.mutants`) break one promise each.
"""
