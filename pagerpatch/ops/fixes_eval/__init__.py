"""`pagerpatch eval fixes`: small repositories with known bugs, run through the whole pipeline, judged by oracles.

The scenarios are data (scenarios/*.toml, read by `spec`, listed by `catalog`); `history` builds a scenario's git
history and captures the alert its bug raises; `oracle` applies a fix to a clean checkout and runs the scenario's
oracle test; `outcome` reads what the pipeline did from its events (pure); `report` adds it up (pure);
`runner` drives it all: the alerts through the stages in this process without the bus (`inprocess`, the replay
chain; the default) or through an embedded stack of their own (`stack`, `--stack`), each followed as a `tracked`.
"""
