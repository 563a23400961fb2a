#include "varflow/validation/two_sample.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "varflow/core/error.h"

namespace varflow {

double knn_two_sample_accuracy(const Matrix& a, const Matrix& b, Index k) {
  const char* w = "knn_two_sample_accuracy";
  check_size(w, "rows of b", b.rows(), a.rows());
  check_at_least(w, "draws of a", a.cols(), 2);
  check_at_least(w, "draws of b", b.cols(), 2);
  const Index na = a.cols(), n = na + b.cols();
  check_at_least(w, "k", k, 1);
  if (k >= n) throw InvalidArgument(format_message(w, ": k = ", k, " must be below the pooled draws ", n));
  Matrix pooled(a.rows(), n);
  pooled << a, b;
  const int smaller_label = na <= b.cols() ? 0 : 1;
  std::vector<std::pair<double, Index>> distance(static_cast<std::size_t>(n - 1));
  double correct[2] = {0.0, 0.0};
  for (Index i = 0; i < n; ++i) {
    Index m = 0;
    for (Index j = 0; j < n; ++j) {
      if (j != i) distance[static_cast<std::size_t>(m++)] = {(pooled.col(i) - pooled.col(j)).squaredNorm(), j};
    }
    std::nth_element(distance.begin(), distance.begin() + (k - 1), distance.end());
    Index votes_a = 0;
    for (Index t = 0; t < k; ++t) votes_a += distance[static_cast<std::size_t>(t)].second < na ? 1 : 0;
    const Index votes_b = k - votes_a;
    const int predicted = votes_a > votes_b ? 0 : votes_b > votes_a ? 1 : smaller_label;
    const int label = i < na ? 0 : 1;
    if (predicted == label) correct[label] += 1.0;
  }
  return 0.5 * (correct[0] / static_cast<double>(na) + correct[1] / static_cast<double>(n - na));
}

}  // namespace varflow
