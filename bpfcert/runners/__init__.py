"""The runner protocol: how the harness drives a runtime or an ISA engine out of process (spec/runner.schema.json).

`serve` is the runner side (a runner may use it; the harness never imports a runner); the client side, the command
values and runner discovery live beside it."""
