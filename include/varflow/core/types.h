#pragma once
// Basic numeric types shared by every varflow module.
#include <Eigen/Core>
#include <cstdint>

namespace varflow {

using Index = Eigen::Index;
using Vector = Eigen::VectorXd;   // a state, an observation vector or a perturbation
using Matrix = Eigen::MatrixXd;   // column-major; in batched code one sample per column
using Mask = Eigen::Array<bool, Eigen::Dynamic, 1>;  // true = value present (used), false = missing

}  // namespace varflow
