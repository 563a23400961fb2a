! The C ABI from Fortran 2008 through the varflow module: a Lorenz-96 written in Fortran passes the
! TL/AD checks and runs an incremental 4D-Var window that agrees with varflow's own Lorenz-96 to
! round-off; a failing call-back is a status with a message; a trained amortized model file
! (first argument, optional) is sampled. Stops with code 1 on the first failed check.
program fortran_abi_test
  use, intrinsic :: iso_c_binding
  use varflow
  use lorenz96_model
  implicit none
  integer(c_int64_t), parameter :: n = 40
  type(lorenz96_parameters), target :: params
  type(c_ptr) :: mine, builtin, result_mine, result_builtin, q
  type(varflow_check_report) :: report
  type(varflow_summary) :: summary
  real(c_double) :: x0(n), a(n), b(n), background(n), xa_mine(n), xa_builtin(n), sd(n)
  real(c_double), allocatable :: y(:), mean(:), draws(:)
  integer(c_int) :: status
  character(len=512) :: path
  integer :: i

  params%forcing = 8.0_c_double
  params%dt = 0.05_c_double
  call expect(varflow_model_create(n, c_funloc(lorenz96_step), c_funloc(lorenz96_tangent), &
              c_funloc(lorenz96_adjoint), c_loc(params), "lorenz96 in Fortran" // c_null_char, mine) == VARFLOW_OK, &
              "create the Fortran model")
  call expect(varflow_model_create_registered("lorenz96", [character(len=7) :: "n", "forcing", "dt"], &
              [40.0_c_double, 8.0_c_double, 0.05_c_double], builtin) == VARFLOW_OK, "create the registered lorenz96")

  x0 = 8.0_c_double
  x0(1) = 8.01_c_double
  call expect(varflow_model_forecast(builtin, 1000_c_int64_t, x0) == VARFLOW_OK, "spin-up")
  a = x0
  b = x0
  call expect(varflow_model_forecast(mine, 20_c_int64_t, a) == VARFLOW_OK, "Fortran forecast")
  call expect(varflow_model_forecast(builtin, 20_c_int64_t, b) == VARFLOW_OK, "C++ forecast")
  print '(a, es10.3)', "20-step forecast: max |Fortran - C++| = ", maxval(abs(a - b))
  call expect(maxval(abs(a - b)) < 1e-11_c_double, "the Fortran forecast agrees with varflow's to round-off")

  call expect(varflow_model_check(mine, x0, 1_c_int64_t, 42_c_int64_t, report) == VARFLOW_OK, "model check ran")
  print '(a, es10.3, a, es10.3, a, f4.1, a)', "TL/AD checks: dot-product ", report%dot_product_relative_error, &
        ", Taylor min ratio ", report%taylor_min_ratio, " over ", report%taylor_linear_decades, " decades"
  call expect(report%passed == 1, "the Fortran model passes the dot-product, Taylor and linearity checks")

  do i = 1, int(n)
    background(i) = x0(i) + 0.8_c_double * cos(0.9_c_double * (i - 1))
  end do
  call expect(solve(mine, result_mine) == VARFLOW_OK, "4D-Var with the Fortran model")
  call expect(solve(builtin, result_builtin) == VARFLOW_OK, "4D-Var with the registered model")
  call expect(varflow_result_analysis(result_mine, xa_mine) == VARFLOW_OK, "analysis")
  call expect(varflow_result_analysis(result_builtin, xa_builtin) == VARFLOW_OK, "analysis")
  call expect(varflow_result_posterior_std(result_mine, sd) == VARFLOW_OK, "posterior sd")
  call expect(varflow_result_summary(result_mine, summary) == VARFLOW_OK .and. summary%converged == 1, "converged")
  print '(a, i0, a, es10.3)', "incremental 4D-Var: ", summary%iterations, &
        " iterations, max |x_a(Fortran) - x_a(C++)| = ", maxval(abs(xa_mine - xa_builtin))
  call expect(maxval(abs(xa_mine - xa_builtin)) < 1e-9_c_double, "the analyses agree")
  call expect(all(sd > 0.0_c_double .and. sd < 1.0_c_double), "posterior sd in (0, 1)")
  block
    real(c_double), allocatable :: v(:), jtw(:)
    real(c_double) :: jv(n), w(n)
    allocate(v(varflow_result_observation_size(result_mine)), jtw(varflow_result_observation_size(result_mine)))
    do i = 1, size(v)
      v(i) = sin(0.37_c_double * (i - 1))
    end do
    do i = 1, int(n)
      w(i) = cos(0.61_c_double * (i - 1))
    end do
    call expect(varflow_result_sensitivity_apply(result_mine, v, jv) == VARFLOW_OK, "J v")
    call expect(varflow_result_sensitivity_apply_transpose(result_mine, w, jtw) == VARFLOW_OK, "J^T w")
    call expect(abs(dot_product(jv, w) - dot_product(v, jtw)) <= 1e-10_c_double * max(1.0_c_double, &
                abs(dot_product(jv, w))), "<J v, w> = <v, J^T w>")
  end block
  call varflow_result_destroy(result_mine)
  call varflow_result_destroy(result_builtin)

  ! An observation operator written in Fortran (every other point) passes its checks.
  block
    type(c_ptr) :: op
    call expect(varflow_obs_operator_create(n, n / 2, c_funloc(every_other_apply), c_funloc(every_other_tangent), &
                c_funloc(every_other_adjoint), c_null_ptr, "every other point" // c_null_char, op) == VARFLOW_OK, &
                "create the Fortran operator")
    call expect(varflow_obs_operator_check(op, x0, 5_c_int64_t, report) == VARFLOW_OK .and. report%passed == 1, &
                "the Fortran operator passes its checks")
    call varflow_obs_operator_destroy(op)
  end block

  params%calls = 0
  params%fail_after = 4
  status = solve(mine, result_mine)
  call expect(status == VARFLOW_CALLBACK_ERROR, "a failing call-back gives VARFLOW_CALLBACK_ERROR")
  call expect(index(varflow_last_error(), "step call-back returned 9") > 0, "the message names the call-back")
  print '(a)', "call-back failure: " // varflow_last_error()
  params%fail_after = 0

  if (command_argument_count() >= 1) then
    call get_command_argument(1, path)
    call expect(varflow_amortized_load(trim(path) // c_null_char, q) == VARFLOW_OK, "load the model file")
    allocate(y(varflow_amortized_observation_size(q)), mean(varflow_amortized_state_size(q)))
    allocate(draws(varflow_amortized_state_size(q) * 1000))
    y = 0.2_c_double
    call expect(varflow_amortized_mean(q, y, c_null_ptr, mean) == VARFLOW_OK, "mean")
    call expect(varflow_amortized_sample(q, y, c_null_ptr, 1000_c_int64_t, 7_c_int64_t, draws) == VARFLOW_OK, "sample")
    print '(a, f8.4, a, f8.4)', "amortized: mean(1) ", mean(1), ", sample mean(1) ", &
          sum(draws(1::varflow_amortized_state_size(q))) / 1000.0_c_double
    call expect(abs(sum(draws(1::varflow_amortized_state_size(q))) / 1000.0_c_double - mean(1)) < 0.05_c_double, &
                "the draws' mean agrees with the model's mean")
    call varflow_amortized_destroy(q)
  end if

  call varflow_model_destroy(mine)
  call varflow_model_destroy(builtin)
  print '(a)', "passed"

contains

  integer(c_int) function every_other_apply(user, nx, x, m, y) bind(c)
    type(c_ptr), value :: user
    integer(c_int64_t), value :: nx, m
    real(c_double), intent(in) :: x(nx)
    real(c_double), intent(out) :: y(m)
    y = x(1::2)
    every_other_apply = 0
  end function
  integer(c_int) function every_other_tangent(user, nx, x, dx, m, dy) bind(c)
    type(c_ptr), value :: user
    integer(c_int64_t), value :: nx, m
    real(c_double), intent(in) :: x(nx), dx(nx)
    real(c_double), intent(out) :: dy(m)
    dy = dx(1::2)
    every_other_tangent = 0
  end function
  integer(c_int) function every_other_adjoint(user, nx, x, m, ay, ax) bind(c)
    type(c_ptr), value :: user
    integer(c_int64_t), value :: nx, m
    real(c_double), intent(in) :: x(nx), ay(m)
    real(c_double), intent(out) :: ax(nx)
    ax = 0
    ax(1::2) = ay
    every_other_adjoint = 0
  end function

  subroutine expect(ok, what)
    logical, intent(in) :: ok
    character(len=*), intent(in) :: what
    if (.not. ok) then
      print '(a)', "FAILED: " // what // " (last error: " // varflow_last_error() // ")"
      error stop 1
    end if
  end subroutine

  ! A 4-step window on `model` from `background`, identity observations every 2 steps of the truth x0's
  ! trajectory plus a fixed perturbation, B = I, R = 0.5 I; incremental 4D-Var.
  integer(c_int) function solve(model, result)
    type(c_ptr), intent(in) :: model
    type(c_ptr), intent(out) :: result
    type(c_ptr) :: window, h
    real(c_double) :: x(n), yk(n), ones(n), half(n)
    integer(c_int64_t) :: k
    integer :: j
    ones = 1.0_c_double
    half = 0.5_c_double
    x = x0
    result = c_null_ptr
    solve = varflow_window_create(model, n, background, 4_c_int64_t, window)
    if (solve /= VARFLOW_OK) return
    solve = varflow_window_set_b_diagonal(window, ones)
    if (solve == VARFLOW_OK) solve = varflow_obs_operator_create_identity(n, h)
    do k = 0, 4, 2
      if (solve /= VARFLOW_OK) exit
      do j = 1, int(n)
        yk(j) = x(j) + 0.3_c_double * sin(1.7_c_double * real(j - 1 + 3 * k, c_double))
      end do
      solve = varflow_window_add_observations(window, k, h, n, yk, c_null_ptr, half)
      if (solve == VARFLOW_OK .and. k + 2 <= 4) solve = varflow_model_forecast(builtin, 2_c_int64_t, x)
    end do
    if (solve == VARFLOW_OK) solve = varflow_solve(window, VARFLOW_INCREMENTAL_4DVAR, result)
    call varflow_obs_operator_destroy(h)
    call varflow_window_destroy(window)
  end function

end program fortran_abi_test
