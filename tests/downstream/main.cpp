// Links the installed varflow and runs a short Lorenz-96 forecast.
#include <varflow/model/lorenz96.h>
#include <varflow/model/trajectory.h>
#include <varflow/version.h>

#include <iostream>

int main() {
  varflow::Lorenz96 model(40, 8.0, 0.05);
  varflow::Vector x0 = varflow::Vector::Constant(40, 8.0);
  x0[0] += 0.01;
  const auto traj = varflow::Trajectory::integrate(model, x0, 100);
  std::cout << "varflow " << VARFLOW_VERSION_STRING << " downstream: " << model.name()
            << " |x_100| = " << traj.final_state().norm() << "\n";
  return traj.final_state().allFinite() ? 0 : 1;
}
