#pragma once
// Classifier two-sample test (C2ST; Lopez-Paz & Oquab 2017) with a k-nearest-neighbour classifier:
// are draws `a` and `b` (d x n_a, d x n_b, one draw per column) from the same distribution?
//
// Every draw of the pooled sample is classified by a majority vote of its k nearest other draws
// (Euclidean distance, leave-one-out; ties go to the smaller sample's label), and the accuracy is
// returned, weighting both samples equally. It is about 0.5 when the distributions agree and tends
// to 1 as they separate (sbi's C2ST reads the same way). O((n_a + n_b)^2 d): meant for a few
// thousand draws of low-dimensional posteriors (two-moons).
#include "varflow/core/types.h"

namespace varflow {

// Throws InvalidArgument when the row counts differ, a sample has fewer than 2 draws, or k < 1 or
// k >= n_a + n_b.
double knn_two_sample_accuracy(const Matrix& a, const Matrix& b, Index k = 5);

}  // namespace varflow
