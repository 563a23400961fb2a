#pragma once
// The validation gates that decide whether a fast (amortized) posterior may replace the variational
// oracle: posterior agreement, adjoint calibration and simulation-based calibration, and the
// promotion decision that runs all three. See design/gates.md.
#include "varflow/validation/adjoint_calibration.h"
#include "varflow/validation/ecdf_band.h"
#include "varflow/validation/posterior_agreement.h"
#include "varflow/validation/promotion.h"
#include "varflow/validation/sbc.h"
#include "varflow/validation/statistics.h"
