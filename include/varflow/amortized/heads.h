#pragma once
// Every built-in head of an amortized posterior and the head registry (head.h for the interface,
// head_registry.h for building heads by name).
#include "varflow/amortized/flow_head.h"
#include "varflow/amortized/gaussian_head.h"
#include "varflow/amortized/head.h"
#include "varflow/amortized/head_registry.h"
#include "varflow/amortized/score_head.h"
