// symsens runtime: the scalar-generic maths generated model code calls (symsens::exp, symsens::ipow, ...).
//
// Scalar types: double (and long double), and Dual<T, P> — a value with P first-order partials, which
// turns any routine or integrator written over T into its exact forward-mode derivative.  Wider real
// types (double-double) plug in by specialising is_real, constant<T> and the functions below.
#pragma once

#include <cmath>
#include <cstdlib>
#include <type_traits>

namespace symsens {

template <class T> struct is_real : std::false_type {};
template <> struct is_real<double> : std::true_type {};
template <> struct is_real<long double> : std::true_type {};

// Exact constants: the double literal for double, the decimal string for wider types.  A class template so
// that scalar types built on others (duals) can specialise it partially.
template <class T> struct constant_maker;
template <> struct constant_maker<double> {
    static double make(double literal, const char*) { return literal; }
};
template <> struct constant_maker<long double> {
    static long double make(double, const char* decimal) { return std::strtold(decimal, nullptr); }
};
template <class T> inline T constant(double literal, const char* decimal) { return constant_maker<T>::make(literal, decimal); }

// The real type a scalar is built on: the type itself for real scalars, the innermost value type of a dual
// number (double for Dual<double, P> and Dual<Dual<double, P>, Q>, double-double for Dual<DoubleDouble, P>).
// Generated routines hold their numeric constants in it, so that 2*x over dual numbers scales x's value and
// partials (P + 1 multiplications) instead of multiplying by a dual 2 with zero partials (2P + 1
// multiplications, P additions and the zero dual's construction); for real scalars it is T itself, so the
// constants of the extended-precision types stay exact.
template <class T> struct scalar_of { using type = T; };
template <class T> using scalar_of_t = typename scalar_of<T>::type;

// ---- real scalars ----------------------------------------------------------------------------------
#define SYMSENS_REAL_UNARY(name, impl)                                                    \
    template <class T, typename std::enable_if<is_real<T>::value, int>::type = 0>        \
    inline T name(const T& x) { return impl(x); }
SYMSENS_REAL_UNARY(exp, std::exp)
SYMSENS_REAL_UNARY(log, std::log)
SYMSENS_REAL_UNARY(sqrt, std::sqrt)
SYMSENS_REAL_UNARY(sin, std::sin)
SYMSENS_REAL_UNARY(cos, std::cos)
SYMSENS_REAL_UNARY(tan, std::tan)
SYMSENS_REAL_UNARY(sinh, std::sinh)
SYMSENS_REAL_UNARY(cosh, std::cosh)
SYMSENS_REAL_UNARY(tanh, std::tanh)
SYMSENS_REAL_UNARY(abs, std::fabs)
#undef SYMSENS_REAL_UNARY

template <class T, typename std::enable_if<is_real<T>::value, int>::type = 0>
inline T pow(const T& x, const T& y) { return std::pow(x, y); }
template <class T, typename std::enable_if<is_real<T>::value, int>::type = 0>
inline T sign(const T& x) { return T((x > T(0)) - (x < T(0))); }
template <class T, typename std::enable_if<is_real<T>::value, int>::type = 0>
inline T value(const T& x) { return x; }
template <class T, typename std::enable_if<is_real<T>::value, int>::type = 0>
inline T heaviside(const T& x, const T& at_zero) { return x > T(0) ? T(1) : (x < T(0) ? T(0) : at_zero); }
template <class T, typename std::enable_if<is_real<T>::value, int>::type = 0>
inline T min(const T& a, const T& b) { return b < a ? b : a; }
template <class T, typename std::enable_if<is_real<T>::value, int>::type = 0>
inline T max(const T& a, const T& b) { return a < b ? b : a; }

// x^N by repeated squaring: exact for small N, no call to pow, and valid for every scalar type.
template <int N, class T>
inline T ipow(const T& x) {
    static_assert(N >= 0, "ipow takes a non-negative exponent");
    if constexpr (N == 0) {
        return T(1);
    } else if constexpr (N == 1) {
        return x;
    } else {
        const T half = ipow<N / 2>(x);
        if constexpr (N % 2 == 0) {
            return half * half;
        } else {
            return half * half * x;
        }
    }
}

}  // namespace symsens

// @@GENERATED_EXPREL@@

namespace symsens {

// ---- dual numbers: value + P partials ----------------------------------------------------------------
template <class T, int P>
struct Dual {
    T v;
    T d[P];
    Dual() : v(0) { for (int i = 0; i < P; ++i) d[i] = T(0); }
    explicit Dual(const T& value) : v(value) { for (int i = 0; i < P; ++i) d[i] = T(0); }
    template <class U, typename std::enable_if<std::is_arithmetic<U>::value && !std::is_same<U, T>::value, int>::type = 0>
    explicit Dual(U value) : v(T(value)) { for (int i = 0; i < P; ++i) d[i] = T(0); }
    // A seeded variable: value x, partial 1 in slot k.
    static Dual variable(const T& x, int k) { Dual r(x); r.d[k] = T(1); return r; }
    Dual& operator+=(const Dual& o) { v += o.v; for (int i = 0; i < P; ++i) d[i] += o.d[i]; return *this; }
    Dual& operator-=(const Dual& o) { v -= o.v; for (int i = 0; i < P; ++i) d[i] -= o.d[i]; return *this; }
    Dual& operator*=(const Dual& o) {
        for (int i = 0; i < P; ++i) d[i] = d[i] * o.v + v * o.d[i];
        v *= o.v;
        return *this;
    }
    Dual& operator/=(const Dual& o) {
        // The value is computed exactly as the plain scalar program computes it (v / o.v, not v * (1/o.v)),
        // so a dual solve takes bit-identical values and hence the same steps as the plain solve.
        const T q = v / o.v;
        for (int i = 0; i < P; ++i) d[i] = (d[i] - q * o.d[i]) / o.v;
        v = q;
        return *this;
    }
};

template <class X> struct is_dual : std::false_type {};
template <class T, int P> struct is_dual<Dual<T, P>> : std::true_type {};

template <class T, int P> inline Dual<T, P> operator+(Dual<T, P> a, const Dual<T, P>& b) { return a += b; }
template <class T, int P> inline Dual<T, P> operator-(Dual<T, P> a, const Dual<T, P>& b) { return a -= b; }
template <class T, int P> inline Dual<T, P> operator*(Dual<T, P> a, const Dual<T, P>& b) { return a *= b; }
template <class T, int P> inline Dual<T, P> operator/(Dual<T, P> a, const Dual<T, P>& b) { return a /= b; }
template <class T, int P> inline Dual<T, P> operator-(const Dual<T, P>& a) {
    Dual<T, P> r;
    r.v = -a.v;
    for (int i = 0; i < P; ++i) r.d[i] = T(0) - a.d[i];
    return r;
}
template <class T, int P> inline Dual<T, P> operator+(const Dual<T, P>& a) { return a; }
// Mixed with a coefficient that is no dual: the value type T (integrators scale duals by real step sizes and
// coefficients) or the underlying real scalar (a generated routine's constants, see scalar_of).  Each computes
// the value exactly as the all-dual operation computes it, with the same operands in the same order, so values
// stay bit-identical; the partials skip the products with the coefficient's zero partials (which differ only in
// the sign of zeros, or in a NaN from 0 * inf).
template <class T, int P> struct scalar_of<Dual<T, P>> { using type = scalar_of_t<T>; };
template <class T, class U>
struct is_dual_coefficient
    : std::integral_constant<bool, std::is_same<U, T>::value || std::is_same<U, scalar_of_t<T>>::value> {};
#define SYMSENS_COEFFICIENT(T, U) typename std::enable_if<is_dual_coefficient<T, U>::value, int>::type = 0

template <class T, int P, class U, SYMSENS_COEFFICIENT(T, U)> inline Dual<T, P> operator*(Dual<T, P> a, const U& s) {
    a.v = a.v * s;
    for (int i = 0; i < P; ++i) a.d[i] = a.d[i] * s;
    return a;
}
template <class T, int P, class U, SYMSENS_COEFFICIENT(T, U)> inline Dual<T, P> operator*(const U& s, Dual<T, P> a) {
    a.v = s * a.v;
    for (int i = 0; i < P; ++i) a.d[i] = s * a.d[i];
    return a;
}
template <class T, int P, class U, SYMSENS_COEFFICIENT(T, U)> inline Dual<T, P> operator/(Dual<T, P> a, const U& s) {
    a.v = a.v / s;
    for (int i = 0; i < P; ++i) a.d[i] = a.d[i] / s;
    return a;
}
// s / a and s - a: as the all-dual operations compute them (Dual(s) / a, Dual(s) - a), without the zero partials.
template <class T, int P, class U, SYMSENS_COEFFICIENT(T, U)> inline Dual<T, P> operator/(const U& s, const Dual<T, P>& a) {
    Dual<T, P> r;
    r.v = s / a.v;
    for (int i = 0; i < P; ++i) r.d[i] = (T(0) - r.v * a.d[i]) / a.v;
    return r;
}
template <class T, int P, class U, SYMSENS_COEFFICIENT(T, U)> inline Dual<T, P> operator+(Dual<T, P> a, const U& s) { a.v = a.v + s; return a; }
template <class T, int P, class U, SYMSENS_COEFFICIENT(T, U)> inline Dual<T, P> operator+(const U& s, Dual<T, P> a) { a.v = s + a.v; return a; }
template <class T, int P, class U, SYMSENS_COEFFICIENT(T, U)> inline Dual<T, P> operator-(Dual<T, P> a, const U& s) { a.v = a.v - s; return a; }
template <class T, int P, class U, SYMSENS_COEFFICIENT(T, U)> inline Dual<T, P> operator-(const U& s, const Dual<T, P>& a) {
    Dual<T, P> r;
    r.v = s - a.v;
    for (int i = 0; i < P; ++i) r.d[i] = T(0) - a.d[i];
    return r;
}

template <class T, int P> inline bool operator<(const Dual<T, P>& a, const Dual<T, P>& b) { return a.v < b.v; }
template <class T, int P> inline bool operator>(const Dual<T, P>& a, const Dual<T, P>& b) { return a.v > b.v; }
template <class T, int P> inline bool operator<=(const Dual<T, P>& a, const Dual<T, P>& b) { return a.v <= b.v; }
template <class T, int P> inline bool operator>=(const Dual<T, P>& a, const Dual<T, P>& b) { return a.v >= b.v; }
// Whether a number is exactly zero; for a dual number (nested ones too), its value and every partial.
template <class T> inline bool is_exact_zero(const T& x) { return x == T(0); }
template <class T, int P> inline bool is_exact_zero(const Dual<T, P>& x) {
    if (!is_exact_zero(x.v)) return false;
    for (int i = 0; i < P; ++i)
        if (!is_exact_zero(x.d[i])) return false;
    return true;
}

template <class T, int P> inline auto value(const Dual<T, P>& x) { return value(x.v); }

// f(x) for a dual x, given f(x.v) and f'(x.v): the chain rule on every partial.
template <class T, int P>
inline Dual<T, P> chain(const Dual<T, P>& x, const T& f, const T& df) {
    Dual<T, P> r(f);
    for (int i = 0; i < P; ++i) r.d[i] = df * x.d[i];
    return r;
}

template <class T, int P> inline Dual<T, P> exp(const Dual<T, P>& x) { const T e = exp(x.v); return chain(x, e, e); }
template <class T, int P> inline Dual<T, P> log(const Dual<T, P>& x) { return chain(x, log(x.v), T(1) / x.v); }
template <class T, int P> inline Dual<T, P> sqrt(const Dual<T, P>& x) { const T s = sqrt(x.v); return chain(x, s, T(1) / (T(2) * s)); }
template <class T, int P> inline Dual<T, P> sin(const Dual<T, P>& x) { return chain(x, sin(x.v), cos(x.v)); }
template <class T, int P> inline Dual<T, P> cos(const Dual<T, P>& x) { return chain(x, cos(x.v), -sin(x.v)); }
template <class T, int P> inline Dual<T, P> tan(const Dual<T, P>& x) { const T t = tan(x.v); return chain(x, t, T(1) + t * t); }
template <class T, int P> inline Dual<T, P> sinh(const Dual<T, P>& x) { return chain(x, sinh(x.v), cosh(x.v)); }
template <class T, int P> inline Dual<T, P> cosh(const Dual<T, P>& x) { return chain(x, cosh(x.v), sinh(x.v)); }
template <class T, int P> inline Dual<T, P> tanh(const Dual<T, P>& x) { const T t = tanh(x.v); return chain(x, t, T(1) - t * t); }
template <class T, int P> inline Dual<T, P> abs(const Dual<T, P>& x) { return x.v < T(0) ? -x : x; }
template <class T, int P> inline Dual<T, P> sign(const Dual<T, P>& x) { return Dual<T, P>(sign(x.v)); }
template <class T, int P> inline Dual<T, P> heaviside(const Dual<T, P>& x, const Dual<T, P>& at_zero) {
    return Dual<T, P>(heaviside(x.v, at_zero.v));
}
template <class T, int P> inline Dual<T, P> min(const Dual<T, P>& a, const Dual<T, P>& b) { return b.v < a.v ? b : a; }
template <class T, int P> inline Dual<T, P> max(const Dual<T, P>& a, const Dual<T, P>& b) { return a.v < b.v ? b : a; }
// x^y with the value from pow(x.v, y.v), as the plain program computes it (exp(y log x) differs in the last
// bits, and a differentiated controller would then take other steps than the plain solve):
// d(x^y) = y x^(y-1) dx + x^y log(x) dy, the second term only where y carries partials.
template <class T, int P> inline Dual<T, P> pow(const Dual<T, P>& x, const Dual<T, P>& y) {
    const T value = pow(x.v, y.v);
    Dual<T, P> r(value);
    const T dx = y.v * pow(x.v, y.v - T(1));
    bool exponent_varies = false;
    for (int i = 0; i < P; ++i) exponent_varies = exponent_varies || !is_exact_zero(y.d[i]);
    const T dy = exponent_varies ? value * log(x.v) : T(0);
    for (int i = 0; i < P; ++i) r.d[i] = dx * x.d[i] + (exponent_varies ? dy * y.d[i] : T(0));
    return r;
}
// The same with a constant exponent or base (a coefficient as above): the value from pow on the values, the
// partials without the terms the constant's zero partials would contribute.
template <class T, int P, class U, SYMSENS_COEFFICIENT(T, U)> inline Dual<T, P> pow(const Dual<T, P>& x, const U& y) {
    Dual<T, P> r(pow(x.v, y));
    const T dx = y * pow(x.v, y - U(1));
    for (int i = 0; i < P; ++i) r.d[i] = dx * x.d[i];
    return r;
}
template <class T, int P, class U, SYMSENS_COEFFICIENT(T, U)> inline Dual<T, P> pow(const U& x, const Dual<T, P>& y) {
    const T value = pow(x, y.v);
    Dual<T, P> r(value);
    bool exponent_varies = false;
    for (int i = 0; i < P; ++i) exponent_varies = exponent_varies || !is_exact_zero(y.d[i]);
    if (exponent_varies) {  // as above: log(x) only where y carries partials (x may be 0)
        const T dy = value * log(x);
        for (int i = 0; i < P; ++i) r.d[i] = dy * y.d[i];
    }
    return r;
}
#undef SYMSENS_COEFFICIENT
template <int N, class T, int P>
inline Dual<T, P> exprel_derivative(const Dual<T, P>& x) {
    return chain(x, exprel_derivative<N>(x.v), exprel_derivative<N + 1>(x.v));
}
template <class T, int P> inline Dual<T, P> exprel(const Dual<T, P>& x) { return exprel_derivative<0>(x); }

template <class T, int P> struct constant_maker<Dual<T, P>> {
    static Dual<T, P> make(double literal, const char* decimal) { return Dual<T, P>(constant<T>(literal, decimal)); }
};

}  // namespace symsens
