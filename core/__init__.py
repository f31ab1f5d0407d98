"""The floor under every app: database helpers, time rules, job leases, command-line
arguments, pagination and role checks. It imports none of the apps above it."""
