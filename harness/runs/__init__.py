"""One (variant, seed) run and batches of them, a module per job: `common` (what every step shares), `decide` (skip,
resume or new, under the configuration's lock), `train` (fit and record one run), `finish` (its final evaluation,
weights, model registry, figures and analyses), `batch` (the batch run around several), `weights` (`harness eval`).
`harness.runner` plans a `harness run` and drives them."""
