// The network engine's matrix products (nn::multiply, the Eigen gemm of this build) beside an
// optimised BLAS loaded at run time, on the shapes of the step-5 predictor's convolutions (batch 64,
// 40 points, 48 channels, kernel 5: forward W P, weight gradient dY P^T, input gradient W^T dY) and
// of the flow's conditioner (batch 256). The question it answers: how much of the predictor's gap
// to the 3x-PyTorch goal (design/performance.md) a runtime-dispatched gemm would close. The BLAS
// (OpenBLAS from Debian's libopenblas0-serial, say) is not a dependency of varflow: it is opened
// with dlopen, and without one the table has only the engine's column.
//   varflow_gemm_bench [--blas libopenblas.so.0] [--repeats 50]
// One thread; best of the repeats; GFLOP/s = 2 m k n / time. Not a test: prints a table, exits 0.
#include <dlfcn.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "varflow/core/random.h"
#include "varflow/nn/precision.h"

using namespace varflow;

namespace {

// Fortran BLAS dgemm_ / sgemm_ (column-major, arguments by reference).
using Dgemm = void (*)(const char*, const char*, const int*, const int*, const int*, const double*, const double*,
                       const int*, const double*, const int*, const double*, double*, const int*);
using Sgemm = void (*)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                       const int*, const float*, const int*, const float*, float*, const int*);

struct Shape {
  const char* name;
  int m, k, n;
  bool transpose_a, transpose_b;  // C (m x n) = op(A) op(B), op(A) m x k
};

template <typename F>
double best_seconds(int repeats, F&& f) {
  double best = 1e300;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The network engine's matrix products against a BLAS opened at run time, on the predictor's "
               "convolution and the flow's conditioner shapes (one thread, GFLOP/s)"};
  std::string blas = "libopenblas.so.0";
  int repeats = 50;
  app.add_option("--blas", blas, "shared library with dgemm_ and sgemm_ (none: the engine's column only)");
  app.add_option("--repeats", repeats, "timed calls per product (the best is kept)")->check(CLI::Range(1, 100000));
  CLI11_PARSE(app, argc, argv);

  Dgemm dgemm = nullptr;
  Sgemm sgemm = nullptr;
  if (blas != "none") {
    if (void* handle = dlopen(blas.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      dgemm = reinterpret_cast<Dgemm>(dlsym(handle, "dgemm_"));
      sgemm = reinterpret_cast<Sgemm>(dlsym(handle, "sgemm_"));
    }
    if (!dgemm || !sgemm) std::printf("no BLAS peer: %s could not be opened or lacks dgemm_/sgemm_\n", blas.c_str());
  }
  Eigen::setNbThreads(1);

  const Shape shapes[] = {
      {"predictor conv forward W P", 48, 240, 2560, false, false},
      {"predictor conv weight gradient dY P^T", 48, 2560, 240, false, true},
      {"predictor conv input gradient W^T dY", 240, 48, 2560, true, false},
      {"flow conditioner forward W X", 32, 32, 256, false, false},
  };
  std::printf("GFLOP/s, one thread, best of %d calls; engine = nn::multiply of this build\n\n", repeats);
  std::printf("%-40s %6s %6s %6s %12s %12s %12s %12s\n", "product", "m", "k", "n", "engine f64", "BLAS f64",
              "engine f32", "BLAS f32");
  Rng rng(1);
  double sink = 0.0;
  for (const Shape& s : shapes) {
    const Matrix a = s.transpose_a ? rng.normal_matrix(s.k, s.m) : rng.normal_matrix(s.m, s.k);
    const Matrix b = s.transpose_b ? rng.normal_matrix(s.n, s.k) : rng.normal_matrix(s.k, s.n);
    Matrix c(s.m, s.n);
    const double flops = 2.0 * s.m * s.k * s.n;
    auto engine = [&](nn::ProductPrecision p) {
      nn::ScopedProductPrecision scope(p);
      return best_seconds(repeats, [&] {
        if (s.transpose_a) nn::multiply(a.transpose(), b, c);
        else if (s.transpose_b) nn::multiply(a, b.transpose(), c);
        else nn::multiply(a, b, c);
        sink += c(0, 0);
      });
    };
    const double e64 = engine(nn::ProductPrecision::kFloat64), e32 = engine(nn::ProductPrecision::kFloat32);
    std::printf("%-40s %6d %6d %6d %12.1f", s.name, s.m, s.k, s.n, flops / e64 * 1e-9);
    if (dgemm && sgemm) {
      const char ta = s.transpose_a ? 'T' : 'N', tb = s.transpose_b ? 'T' : 'N';
      const int lda = static_cast<int>(a.rows()), ldb = static_cast<int>(b.rows()), ldc = s.m;
      const double one = 1.0, zero = 0.0;
      const double b64 = best_seconds(repeats, [&] {
        dgemm(&ta, &tb, &s.m, &s.n, &s.k, &one, a.data(), &lda, b.data(), &ldb, &zero, c.data(), &ldc);
        sink += c(0, 0);
      });
      // float: the engine's float32 path rounds its operands every call; the BLAS is given them rounded.
      const Eigen::MatrixXf af = a.cast<float>(), bf = b.cast<float>();
      Eigen::MatrixXf cf(s.m, s.n);
      const float onef = 1.0f, zerof = 0.0f;
      const double b32 = best_seconds(repeats, [&] {
        sgemm(&ta, &tb, &s.m, &s.n, &s.k, &onef, af.data(), &lda, bf.data(), &ldb, &zerof, cf.data(), &ldc);
        sink += cf(0, 0);
      });
      std::printf(" %12.1f %12.1f %12.1f\n", flops / b64 * 1e-9, flops / e32 * 1e-9, flops / b32 * 1e-9);
    } else {
      std::printf(" %12s %12.1f %12s\n", "-", flops / e32 * 1e-9, "-");
    }
  }
  if (sink == 0.125) std::printf(" ");  // keep the products
  return 0;
}
