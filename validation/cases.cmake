# The validation cases: name;kind;problem;head;config;seed. kind = amortized (train + validate) or
# 4dvar (varflow assimilate). validation/reference/<name>.json holds the reference figures.
set(VALIDATION_CASES
  "linear-gaussian-smoke;amortized;linear-gaussian;gaussian;linear-gaussian-smoke.yaml;3"
  "linear-gaussian;amortized;linear-gaussian;gaussian;linear-gaussian.yaml;1"
  "two-moons;amortized;two-moons;flow;two-moons.yaml;1"
  "lorenz96;amortized;lorenz96;gaussian;lorenz96.yaml;1"
  "lorenz63-4dvar;4dvar;lorenz63;;lorenz63.yaml;1")
set(VALIDATION_NIGHTLY_CASES linear-gaussian two-moons lorenz96 lorenz63-4dvar)
set(VALIDATION_SMOKE_CASES linear-gaussian-smoke)
