# The layers of varflow, bottom to top, and the modules in each, in order. A module may include the
# public headers (include/varflow/<module>/) of modules listed before it and of itself, never of one
# listed after it; tests/layering/check_layering.cmake enforces this (ctest `layering`).
# Sources are the .cpp files of src/<layer>/<module>/; public headers are in include/varflow/<module>/.
set(VARFLOW_LAYERS foundation physics oracle learned gates cycling bindings)
set(VARFLOW_LAYER_foundation core io)                 # types, errors, RNG, hashes; files and configs
set(VARFLOW_LAYER_physics covariance model obs)       # B and R, models with TL/AD, observation operators
set(VARFLOW_LAYER_oracle posterior var)               # posteriors; 4D-Var, Laplace, sensitivities
set(VARFLOW_LAYER_learned nn amortized emulator vi)   # networks, amortized posteriors, emulators, variational flows
set(VARFLOW_LAYER_gates validation report testing)    # checks and gates, reports, conformance suites
set(VARFLOW_LAYER_cycling experiment cycle)           # cycled twin experiments, the six-step cycle
set(VARFLOW_LAYER_bindings c)                         # the C ABI (include/varflow/c/varflow.h)
