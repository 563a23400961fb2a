! Fortran 2008 bindings of the varflow C ABI (include/varflow/c/varflow.h; rules in design/c_abi.md).
! Handles are type(c_ptr); sizes are integer(c_int64_t); arrays are passed as assumed-size real(c_double)
! arrays (column-major, as in C). Call-backs are bind(c) functions returning integer(c_int), 0 = success:
!
!   integer(c_int) function step(user, n, x) bind(c)
!     type(c_ptr), value :: user; integer(c_int64_t), value :: n; real(c_double) :: x(n)
!
! and likewise tangent(user, n, x, dx) and adjoint(user, n, x, ax) with x intent(in).
module varflow
  use, intrinsic :: iso_c_binding
  implicit none
  private

  integer(c_int), parameter, public :: VARFLOW_OK = 0, VARFLOW_NUMERICAL_FAILURE = 1, &
                                       VARFLOW_INVALID_ARGUMENT = 2, VARFLOW_CALLBACK_ERROR = 3, &
                                       VARFLOW_INTERNAL_ERROR = 4
  integer(c_int), parameter, public :: VARFLOW_STRONG_4DVAR = 0, VARFLOW_INCREMENTAL_4DVAR = 1, &
                                       VARFLOW_3DVAR = 2

  type, bind(c), public :: varflow_check_report
    real(c_double) :: dot_product_relative_error, taylor_min_ratio, taylor_linear_decades, linearity_error
    integer(c_int) :: dot_product_passed, taylor_passed, linearity_passed, passed
  end type

  type, bind(c), public :: varflow_summary
    integer(c_int) :: converged, termination, iterations, outer_iterations
    real(c_double) :: initial_cost, final_cost, final_gradient_norm, wall_time_seconds
    integer(c_int64_t) :: tl_sweeps, ad_sweeps, forward_runs, posterior_rank
  end type

  public :: varflow_last_error, varflow_model_create_registered
  public :: varflow_model_create, varflow_model_destroy, varflow_model_forecast, varflow_model_check
  public :: varflow_obs_operator_create, varflow_obs_operator_create_identity, varflow_obs_operator_destroy
  public :: varflow_obs_operator_check, varflow_window_set_b_periodic_gaussian
  public :: varflow_result_observation_size, varflow_result_sensitivity_apply
  public :: varflow_result_sensitivity_apply_transpose, varflow_amortized_log_prob
  public :: varflow_window_create, varflow_window_destroy, varflow_window_set_b_diagonal
  public :: varflow_window_add_observations, varflow_solve
  public :: varflow_result_destroy, varflow_result_analysis, varflow_result_posterior_std, varflow_result_summary
  public :: varflow_amortized_load, varflow_amortized_destroy, varflow_amortized_state_size
  public :: varflow_amortized_observation_size, varflow_amortized_mean, varflow_amortized_sample

  interface
    function c_last_error() result(p) bind(c, name="varflow_last_error")
      import :: c_ptr
      type(c_ptr) :: p
    end function
    function c_strlen(s) result(n) bind(c, name="strlen")
      import :: c_ptr, c_size_t
      type(c_ptr), value :: s
      integer(c_size_t) :: n
    end function

    integer(c_int) function varflow_model_create(n, step, tangent, adjoint, user, name, model) &
        bind(c, name="varflow_model_create")
      import :: c_int, c_int64_t, c_funptr, c_ptr, c_char
      integer(c_int64_t), value :: n
      type(c_funptr), value :: step, tangent, adjoint
      type(c_ptr), value :: user
      character(kind=c_char), intent(in) :: name(*)  ! NUL-terminated: 'name'//c_null_char
      type(c_ptr), intent(out) :: model
    end function
    integer(c_int) function c_model_create_registered(name, count, keys, values, model) &
        bind(c, name="varflow_model_create_registered")
      import :: c_int, c_int64_t, c_ptr, c_char, c_double
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int64_t), value :: count
      type(c_ptr), intent(in) :: keys(*)
      real(c_double), intent(in) :: values(*)
      type(c_ptr), intent(out) :: model
    end function
    subroutine varflow_model_destroy(model) bind(c, name="varflow_model_destroy")
      import :: c_ptr
      type(c_ptr), value :: model
    end subroutine
    integer(c_int) function varflow_model_forecast(model, steps, x) bind(c, name="varflow_model_forecast")
      import :: c_int, c_int64_t, c_ptr, c_double
      type(c_ptr), value :: model
      integer(c_int64_t), value :: steps
      real(c_double), intent(inout) :: x(*)
    end function
    integer(c_int) function varflow_model_check(model, x, steps, seed, report) bind(c, name="varflow_model_check")
      import :: c_int, c_int64_t, c_ptr, c_double, varflow_check_report
      type(c_ptr), value :: model
      real(c_double), intent(in) :: x(*)
      integer(c_int64_t), value :: steps, seed
      type(varflow_check_report), intent(out) :: report
    end function

    ! Call-backs: apply(user, n, x, m, y), tangent(user, n, x, dx, m, dy), adjoint(user, n, x, m, ay, ax).
    integer(c_int) function varflow_obs_operator_create(n, m, apply, tangent, adjoint, user, name, op) &
        bind(c, name="varflow_obs_operator_create")
      import :: c_int, c_int64_t, c_funptr, c_ptr, c_char
      integer(c_int64_t), value :: n, m
      type(c_funptr), value :: apply, tangent, adjoint
      type(c_ptr), value :: user
      character(kind=c_char), intent(in) :: name(*)
      type(c_ptr), intent(out) :: op
    end function
    integer(c_int) function varflow_obs_operator_check(op, x, seed, report) bind(c, name="varflow_obs_operator_check")
      import :: c_int, c_int64_t, c_ptr, c_double, varflow_check_report
      type(c_ptr), value :: op
      real(c_double), intent(in) :: x(*)
      integer(c_int64_t), value :: seed
      type(varflow_check_report), intent(out) :: report
    end function
    integer(c_int) function varflow_obs_operator_create_identity(n, op) &
        bind(c, name="varflow_obs_operator_create_identity")
      import :: c_int, c_int64_t, c_ptr
      integer(c_int64_t), value :: n
      type(c_ptr), intent(out) :: op
    end function
    subroutine varflow_obs_operator_destroy(op) bind(c, name="varflow_obs_operator_destroy")
      import :: c_ptr
      type(c_ptr), value :: op
    end subroutine

    integer(c_int) function varflow_window_create(model, n, background, steps, window) &
        bind(c, name="varflow_window_create")
      import :: c_int, c_int64_t, c_ptr, c_double
      type(c_ptr), value :: model
      integer(c_int64_t), value :: n, steps
      real(c_double), intent(in) :: background(*)
      type(c_ptr), intent(out) :: window
    end function
    subroutine varflow_window_destroy(window) bind(c, name="varflow_window_destroy")
      import :: c_ptr
      type(c_ptr), value :: window
    end subroutine
    integer(c_int) function varflow_window_set_b_diagonal(window, variances) &
        bind(c, name="varflow_window_set_b_diagonal")
      import :: c_int, c_ptr, c_double
      type(c_ptr), value :: window
      real(c_double), intent(in) :: variances(*)
    end function
    integer(c_int) function varflow_window_set_b_periodic_gaussian(window, variance, length_scale, nugget) &
        bind(c, name="varflow_window_set_b_periodic_gaussian")
      import :: c_int, c_ptr, c_double
      type(c_ptr), value :: window
      real(c_double), value :: variance, length_scale, nugget
    end function
    ! mask: c_null_ptr for all present, else c_loc of an integer(c_int) array (nonzero = present).
    integer(c_int) function varflow_window_add_observations(window, step, op, m, values, mask, error_variances) &
        bind(c, name="varflow_window_add_observations")
      import :: c_int, c_int64_t, c_ptr, c_double
      type(c_ptr), value :: window, op, mask
      integer(c_int64_t), value :: step, m
      real(c_double), intent(in) :: values(*), error_variances(*)
    end function
    integer(c_int) function varflow_solve(window, method, result) bind(c, name="varflow_solve")
      import :: c_int, c_ptr
      type(c_ptr), value :: window
      integer(c_int), value :: method
      type(c_ptr), intent(out) :: result
    end function

    subroutine varflow_result_destroy(result) bind(c, name="varflow_result_destroy")
      import :: c_ptr
      type(c_ptr), value :: result
    end subroutine
    integer(c_int) function varflow_result_analysis(result, x) bind(c, name="varflow_result_analysis")
      import :: c_int, c_ptr, c_double
      type(c_ptr), value :: result
      real(c_double), intent(out) :: x(*)
    end function
    integer(c_int) function varflow_result_posterior_std(result, sd) bind(c, name="varflow_result_posterior_std")
      import :: c_int, c_ptr, c_double
      type(c_ptr), value :: result
      real(c_double), intent(out) :: sd(*)
    end function
    integer(c_int) function varflow_result_summary(result, summary) bind(c, name="varflow_result_summary")
      import :: c_int, c_ptr, varflow_summary
      type(c_ptr), value :: result
      type(varflow_summary), intent(out) :: summary
    end function

    integer(c_int64_t) function varflow_result_observation_size(result) bind(c, name="varflow_result_observation_size")
      import :: c_int64_t, c_ptr
      type(c_ptr), value :: result
    end function
    ! out = J v (v of the stacked observation size, out of the state size)
    integer(c_int) function varflow_result_sensitivity_apply(result, v, out) &
        bind(c, name="varflow_result_sensitivity_apply")
      import :: c_int, c_ptr, c_double
      type(c_ptr), value :: result
      real(c_double), intent(in) :: v(*)
      real(c_double), intent(out) :: out(*)
    end function
    ! out = J^T w (w of the state size, out of the stacked observation size)
    integer(c_int) function varflow_result_sensitivity_apply_transpose(result, w, out) &
        bind(c, name="varflow_result_sensitivity_apply_transpose")
      import :: c_int, c_ptr, c_double
      type(c_ptr), value :: result
      real(c_double), intent(in) :: w(*)
      real(c_double), intent(out) :: out(*)
    end function

    integer(c_int) function varflow_amortized_load(path, model) bind(c, name="varflow_amortized_load")
      import :: c_int, c_ptr, c_char
      character(kind=c_char), intent(in) :: path(*)
      type(c_ptr), intent(out) :: model
    end function
    subroutine varflow_amortized_destroy(model) bind(c, name="varflow_amortized_destroy")
      import :: c_ptr
      type(c_ptr), value :: model
    end subroutine
    integer(c_int64_t) function varflow_amortized_state_size(model) bind(c, name="varflow_amortized_state_size")
      import :: c_int64_t, c_ptr
      type(c_ptr), value :: model
    end function
    integer(c_int64_t) function varflow_amortized_observation_size(model) &
        bind(c, name="varflow_amortized_observation_size")
      import :: c_int64_t, c_ptr
      type(c_ptr), value :: model
    end function
    integer(c_int) function varflow_amortized_mean(model, y, mask, mean) bind(c, name="varflow_amortized_mean")
      import :: c_int, c_ptr, c_double
      type(c_ptr), value :: model, mask
      real(c_double), intent(in) :: y(*)
      real(c_double), intent(out) :: mean(*)
    end function
    integer(c_int) function varflow_amortized_sample(model, y, mask, count, seed, draws) &
        bind(c, name="varflow_amortized_sample")
      import :: c_int, c_int64_t, c_ptr, c_double
      type(c_ptr), value :: model, mask
      real(c_double), intent(in) :: y(*)
      integer(c_int64_t), value :: count, seed
      real(c_double), intent(out) :: draws(*)
    end function
    integer(c_int) function varflow_amortized_log_prob(model, y, mask, count, x, out) &
        bind(c, name="varflow_amortized_log_prob")
      import :: c_int, c_int64_t, c_ptr, c_double
      type(c_ptr), value :: model, mask
      real(c_double), intent(in) :: y(*), x(*)
      integer(c_int64_t), value :: count
      real(c_double), intent(out) :: out(*)
    end function
  end interface

contains

  ! The message of the last failure on this thread, as a Fortran string.
  function varflow_last_error() result(message)
    character(len=:), allocatable :: message
    type(c_ptr) :: p
    character(kind=c_char), pointer :: chars(:)
    integer :: i, n
    p = c_last_error()
    n = int(c_strlen(p))
    call c_f_pointer(p, chars, [n])
    allocate(character(len=n) :: message)
    do i = 1, n
      message(i:i) = chars(i)
    end do
  end function

  ! A registered model (e.g. "lorenz96") with parameters keys(i) = values(i); keys are blank-padded.
  integer(c_int) function varflow_model_create_registered(name, keys, values, model) result(status)
    character(len=*), intent(in) :: name
    character(len=*), intent(in) :: keys(:)
    real(c_double), intent(in) :: values(:)
    type(c_ptr), intent(out) :: model
    character(kind=c_char, len=len(keys) + 1), allocatable, target :: c_keys(:)
    type(c_ptr), allocatable :: pointers(:)
    integer :: i
    allocate(c_keys(size(keys)), pointers(size(keys)))
    do i = 1, size(keys)
      c_keys(i) = trim(keys(i)) // c_null_char
      pointers(i) = c_loc(c_keys(i))
    end do
    status = c_model_create_registered(trim(name) // c_null_char, int(size(keys), c_int64_t), pointers, values, model)
  end function

end module varflow
