! Lorenz-96 (single scale, RK4) written in Fortran with its exact discrete tangent-linear and adjoint,
! plugged into varflow through the C ABI as an existing Fortran model would be. `user` points to a
! type(lorenz96_parameters).
module lorenz96_model
  use, intrinsic :: iso_c_binding
  implicit none
  private
  public :: lorenz96_parameters, lorenz96_step, lorenz96_tangent, lorenz96_adjoint

  type, bind(c) :: lorenz96_parameters
    real(c_double) :: forcing, dt
    integer(c_int) :: fail_after = 0  ! > 0: the step returns 9 from that call on
    integer(c_int) :: calls = 0
  end type

contains

  pure integer function wrap(i, n)
    integer, intent(in) :: i, n
    wrap = modulo(i - 1, n) + 1
  end function

  pure subroutine tendency(x, forcing, f)
    real(c_double), intent(in) :: x(:), forcing
    real(c_double), intent(out) :: f(:)
    integer :: i, n
    n = size(x)
    do i = 1, n
      f(i) = (x(wrap(i + 1, n)) - x(wrap(i - 2, n))) * x(wrap(i - 1, n)) - x(i) + forcing
    end do
  end subroutine

  pure subroutine tendency_tangent(x, dx, df)
    real(c_double), intent(in) :: x(:), dx(:)
    real(c_double), intent(out) :: df(:)
    integer :: i, n, p, m, mm
    n = size(x)
    do i = 1, n
      p = wrap(i + 1, n); m = wrap(i - 1, n); mm = wrap(i - 2, n)
      df(i) = (dx(p) - dx(mm)) * x(m) + (x(p) - x(mm)) * dx(m) - dx(i)
    end do
  end subroutine

  ! ax = ax + f'(x)^T a
  pure subroutine tendency_adjoint(x, a, ax)
    real(c_double), intent(in) :: x(:), a(:)
    real(c_double), intent(inout) :: ax(:)
    integer :: i, n, p, m, mm
    n = size(x)
    do i = 1, n
      p = wrap(i + 1, n); m = wrap(i - 1, n); mm = wrap(i - 2, n)
      ax(p) = ax(p) + a(i) * x(m)
      ax(mm) = ax(mm) - a(i) * x(m)
      ax(m) = ax(m) + a(i) * (x(p) - x(mm))
      ax(i) = ax(i) - a(i)
    end do
  end subroutine

  ! The stage states s(:, 1:4) and tendencies k(:, 1:4) of one RK4 step from x.
  pure subroutine stages(x, forcing, dt, s, k)
    real(c_double), intent(in) :: x(:), forcing, dt
    real(c_double), intent(out) :: s(:, :), k(:, :)
    s(:, 1) = x
    call tendency(s(:, 1), forcing, k(:, 1))
    s(:, 2) = x + 0.5_c_double * dt * k(:, 1)
    call tendency(s(:, 2), forcing, k(:, 2))
    s(:, 3) = x + 0.5_c_double * dt * k(:, 2)
    call tendency(s(:, 3), forcing, k(:, 3))
    s(:, 4) = x + dt * k(:, 3)
    call tendency(s(:, 4), forcing, k(:, 4))
  end subroutine

  integer(c_int) function lorenz96_step(user, n, x) bind(c)
    type(c_ptr), value :: user
    integer(c_int64_t), value :: n
    real(c_double), intent(inout) :: x(n)
    type(lorenz96_parameters), pointer :: p
    real(c_double) :: s(n, 4), k(n, 4)
    call c_f_pointer(user, p)
    p%calls = p%calls + 1
    lorenz96_step = 0
    if (p%fail_after > 0 .and. p%calls >= p%fail_after) then
      lorenz96_step = 9
      return
    end if
    call stages(x, p%forcing, p%dt, s, k)
    x = x + p%dt / 6.0_c_double * (k(:, 1) + 2.0_c_double * k(:, 2) + 2.0_c_double * k(:, 3) + k(:, 4))
  end function

  integer(c_int) function lorenz96_tangent(user, n, x, dx) bind(c)
    type(c_ptr), value :: user
    integer(c_int64_t), value :: n
    real(c_double), intent(in) :: x(n)
    real(c_double), intent(inout) :: dx(n)
    type(lorenz96_parameters), pointer :: p
    real(c_double) :: s(n, 4), k(n, 4), dk(n, 4)
    call c_f_pointer(user, p)
    call stages(x, p%forcing, p%dt, s, k)
    call tendency_tangent(s(:, 1), dx, dk(:, 1))
    call tendency_tangent(s(:, 2), dx + 0.5_c_double * p%dt * dk(:, 1), dk(:, 2))
    call tendency_tangent(s(:, 3), dx + 0.5_c_double * p%dt * dk(:, 2), dk(:, 3))
    call tendency_tangent(s(:, 4), dx + p%dt * dk(:, 3), dk(:, 4))
    dx = dx + p%dt / 6.0_c_double * (dk(:, 1) + 2.0_c_double * dk(:, 2) + 2.0_c_double * dk(:, 3) + dk(:, 4))
    lorenz96_tangent = 0
  end function

  integer(c_int) function lorenz96_adjoint(user, n, x, ax) bind(c)
    type(c_ptr), value :: user
    integer(c_int64_t), value :: n
    real(c_double), intent(in) :: x(n)
    real(c_double), intent(inout) :: ax(n)
    type(lorenz96_parameters), pointer :: p
    real(c_double) :: s(n, 4), k(n, 4), ak(n, 4), u(n)
    call c_f_pointer(user, p)
    call stages(x, p%forcing, p%dt, s, k)
    ak(:, 1) = p%dt / 6.0_c_double * ax
    ak(:, 2) = p%dt / 3.0_c_double * ax
    ak(:, 3) = p%dt / 3.0_c_double * ax
    ak(:, 4) = p%dt / 6.0_c_double * ax
    u = 0; call tendency_adjoint(s(:, 4), ak(:, 4), u)
    ax = ax + u; ak(:, 3) = ak(:, 3) + p%dt * u
    u = 0; call tendency_adjoint(s(:, 3), ak(:, 3), u)
    ax = ax + u; ak(:, 2) = ak(:, 2) + 0.5_c_double * p%dt * u
    u = 0; call tendency_adjoint(s(:, 2), ak(:, 2), u)
    ax = ax + u; ak(:, 1) = ak(:, 1) + 0.5_c_double * p%dt * u
    u = 0; call tendency_adjoint(s(:, 1), ak(:, 1), u)
    ax = ax + u
    lorenz96_adjoint = 0
  end function

end module lorenz96_model
