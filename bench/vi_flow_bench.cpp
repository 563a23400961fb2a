// Cost of the two directions of the variational flows (vi/flow.h): log_prob (density direction) and
// sample (sampling direction), each alone and with its reverse pass, for MAF and IAF spline flows and
// for a mixture-CDF (Gaussianization) flow, at several dimensions. Prints a table.
//   varflow_vi_flow_bench [--batch B] [--repeats R] [--seed S]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include "varflow/core/stopwatch.h"
#include "varflow/vi/flow.h"

using namespace varflow;
using namespace varflow::vi;

namespace {

double time_ms(const std::function<void()>& f, int repeats) {
  f();  // warm-up
  Stopwatch sw;
  for (int r = 0; r < repeats; ++r) f();
  return 1e3 * sw.seconds() / repeats;
}

}  // namespace

int main(int argc, char** argv) {
  Index batch = 256;
  int repeats = 5;
  std::uint64_t seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--batch")) batch = std::atol(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--repeats")) repeats = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seed")) seed = std::strtoull(argv[i + 1], nullptr, 10);
  }
  std::printf("vi flows: ms per batch of %lld (mean of %d), seed %llu; 4 autoregressive layers, MADE 32x32, 8 bins\n",
              static_cast<long long>(batch), repeats, static_cast<unsigned long long>(seed));
  std::printf("%-22s %5s %12s %12s %16s %16s %10s\n", "flow", "d", "log_prob", "sample", "log_prob+backward",
              "sample+backward", "sample/lp");
  for (Index d : {2, 10, 40}) {
    struct Kind {
      std::string name;
      FlowSpec spec;
    };
    FlowSpec maf, iaf, mix;
    maf.direction = FlowDirection::kMaf;
    iaf.direction = FlowDirection::kIaf;
    mix.direction = FlowDirection::kMaf;
    mix.layers = 1;
    mix.mixture_components = 8;
    for (const Kind& k : {Kind{"maf spline", maf}, Kind{"iaf spline", iaf}, Kind{"mixture-cdf(8) + maf", mix}}) {
      Rng rng(seed);
      auto flow = make_flow(d, k.spec);
      flow->initialize(rng);
      for (Index i = 0; i < flow->parameters().size(); ++i) flow->parameters().values()[i] += 0.05 * rng.normal();
      Matrix z(d, batch), x, g;
      for (Index j = 0; j < batch; ++j) z.col(j) = rng.normal_vector(d);
      Vector lq;
      flow->sample(z, x, lq);
      const Vector w = Vector::Ones(batch);
      const double lp = time_ms([&] { flow->log_prob(x); }, repeats);
      const double sp = time_ms([&] { flow->sample(z, x, lq); }, repeats);
      const double lpb = time_ms([&] { flow->log_prob(x); flow->log_prob_backward(w, g, true); }, repeats);
      const double spb = time_ms([&] { flow->sample(z, x, lq); flow->sample_backward(x, w, g, true); }, repeats);
      std::printf("%-22s %5lld %12.3f %12.3f %16.3f %16.3f %10.2f\n", k.name.c_str(), static_cast<long long>(d), lp,
                  sp, lpb, spb, sp / lp);
    }
  }
  return 0;
}
