// symsens double-double: an unevaluated sum hi + lo of two doubles with |lo| <= ulp(hi)/2, i.e. a 106-bit
// significand (unit roundoff about 2^-104 ~ 4.9e-32 for the operations below, ~32 significant digits) at
// the speed of a handful of double operations.
//
// The error-free transformations are Knuth's two-sum (TAOCP vol. 2, Sect. 4.2.2, Theorem B), Dekker's
// fast-two-sum and two-product (T. J. Dekker, "A floating-point technique for extending the available
// precision", Numer. Math. 18 (1971) 224-242; the product through fma when the target has it, otherwise
// through Veltkamp's splitting); the arithmetic, exp (argument reduction by ln 2 and by 2^-k, Taylor, k
// squarings), log (one Newton step on exp from the double log) and sqrt (one Newton step from the double
// sqrt) follow the design of Y. Hida, X. S. Li and D. H. Bailey, "Algorithms for quad-double precision
// floating point arithmetic", Proc. ARITH-15 (2001) 155-162 (the QD library's double-double part).  The code
// is our own.
//
// The header is included *before* symsens_runtime.hpp: it declares DoubleDouble, specialises is_real and
// constant_maker for it (the latter parses the 40-digit decimal strings of the generated code to full
// double-double accuracy) and provides the maths the generated code and the runtime call, as non-template
// overloads in namespace symsens, so that the runtime's own templates (exprel's Bernoulli series and closed
// forms, heaviside, min, max, sign) instantiate for it and find these functions.  There is deliberately no
// implicit conversion to double: a call that would silently drop the low part does not compile.
#pragma once

#include <cmath>
#include <cstdlib>
#include <limits>
#include <type_traits>

#if defined(__FAST_MATH__)
#error "symsens_doubledouble.hpp needs IEEE arithmetic: do not compile with -ffast-math"
#endif

namespace symsens {

template <class T> struct is_real;
template <class T> struct constant_maker;

namespace dd_detail {

// s + e = a + b exactly (Knuth).
inline void two_sum(double a, double b, double& s, double& e) {
    s = a + b;
    const double bb = s - a;
    e = (a - (s - bb)) + (b - bb);
}
// s + e = a + b exactly, given |a| >= |b| or a = 0 (Dekker).
inline void fast_two_sum(double a, double b, double& s, double& e) {
    s = a + b;
    e = b - (s - a);
}
// p + e = a * b exactly (Dekker; via fma where the hardware has it).
inline void two_prod(double a, double b, double& p, double& e) {
    p = a * b;
#if defined(__FMA__) || defined(__aarch64__)
    e = std::fma(a, b, -p);
#else
    constexpr double split = 134217729.0;  // 2^27 + 1 (Veltkamp)
    double t = split * a;
    const double ahi = t - (t - a), alo = a - ahi;
    t = split * b;
    const double bhi = t - (t - b), blo = b - bhi;
    e = ((ahi * bhi - p) + ahi * blo + alo * bhi) + alo * blo;
#endif
}

}  // namespace dd_detail

struct DoubleDouble {
    double hi = 0.0;
    double lo = 0.0;

    constexpr DoubleDouble() = default;
    constexpr DoubleDouble(double h) : hi(h), lo(0.0) {}  // NOLINT: exact, so implicit
    constexpr DoubleDouble(int i) : hi(static_cast<double>(i)), lo(0.0) {}  // NOLINT
    constexpr DoubleDouble(long i) : hi(static_cast<double>(i)), lo(0.0) {}  // NOLINT (|i| < 2^53 in use)
    static DoubleDouble from_parts(double h, double l) {
        DoubleDouble r;
        dd_detail::two_sum(h, l, r.hi, r.lo);
        return r;
    }
    explicit operator double() const { return hi; }

    DoubleDouble& operator+=(const DoubleDouble& b) {
        double s, e, t, f;
        dd_detail::two_sum(hi, b.hi, s, e);
        dd_detail::two_sum(lo, b.lo, t, f);
        e += t;
        dd_detail::fast_two_sum(s, e, s, e);
        e += f;
        dd_detail::fast_two_sum(s, e, hi, lo);
        return *this;
    }
    DoubleDouble& operator-=(const DoubleDouble& b) { return *this += DoubleDouble{-b.hi, -b.lo, 0}; }
    DoubleDouble& operator*=(const DoubleDouble& b) {
        double p, e;
        dd_detail::two_prod(hi, b.hi, p, e);
        e += hi * b.lo + lo * b.hi;
        dd_detail::fast_two_sum(p, e, hi, lo);
        return *this;
    }
    DoubleDouble& operator/=(const DoubleDouble& b) {
        // q1 = a/b in double, r = a - q1 b, q2 = r/b, r -= q2 b, q3 = r/b: the long division of QD's
        // accurate divide, three quotient digits.
        const double q1 = hi / b.hi;
        DoubleDouble r = *this - b * DoubleDouble(q1);
        const double q2 = r.hi / b.hi;
        r -= b * DoubleDouble(q2);
        const double q3 = r.hi / b.hi;
        double s, e;
        dd_detail::fast_two_sum(q1, q2, s, e);
        DoubleDouble q{s, e, 0};
        q += DoubleDouble(q3);
        *this = q;
        return *this;
    }

    friend DoubleDouble operator+(DoubleDouble a, const DoubleDouble& b) { return a += b; }
    friend DoubleDouble operator-(DoubleDouble a, const DoubleDouble& b) { return a -= b; }
    friend DoubleDouble operator*(DoubleDouble a, const DoubleDouble& b) { return a *= b; }
    friend DoubleDouble operator/(DoubleDouble a, const DoubleDouble& b) { return a /= b; }
    friend DoubleDouble operator-(const DoubleDouble& a) { return DoubleDouble{-a.hi, -a.lo, 0}; }
    friend DoubleDouble operator+(const DoubleDouble& a) { return a; }

    friend bool operator==(const DoubleDouble& a, const DoubleDouble& b) { return a.hi == b.hi && a.lo == b.lo; }
    friend bool operator!=(const DoubleDouble& a, const DoubleDouble& b) { return !(a == b); }
    friend bool operator<(const DoubleDouble& a, const DoubleDouble& b) { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo); }
    friend bool operator>(const DoubleDouble& a, const DoubleDouble& b) { return b < a; }
    friend bool operator<=(const DoubleDouble& a, const DoubleDouble& b) { return !(b < a); }
    friend bool operator>=(const DoubleDouble& a, const DoubleDouble& b) { return !(a < b); }

  private:
    constexpr DoubleDouble(double h, double l, int) : hi(h), lo(l) {}
};

using dd = DoubleDouble;

template <> struct is_real<DoubleDouble> : std::true_type {};

namespace dd_detail {

// ln 2 and pi/2 to double-double (hi, lo): the leading 106 bits of the constants.
inline DoubleDouble ln2() { return DoubleDouble::from_parts(6.931471805599452862e-01, 2.319046813846299558e-17); }
inline DoubleDouble half_pi() { return DoubleDouble::from_parts(1.570796326794896558e+00, 6.123233995736766036e-17); }
inline DoubleDouble eps() { return DoubleDouble(4.93038065763132e-32); }  // 2^-104

inline DoubleDouble ldexp(const DoubleDouble& a, int k) {
    return DoubleDouble::from_parts(std::ldexp(a.hi, k), std::ldexp(a.lo, k));
}

// 10^k exactly for 0 <= k <= 22, by squaring beyond (a few ulps).
inline DoubleDouble pow10(int k) {
    const bool negative = k < 0;
    unsigned m = static_cast<unsigned>(negative ? -k : k);
    DoubleDouble result(1.0), base(10.0);
    while (m) {
        if (m & 1u) result *= base;
        base *= base;
        m >>= 1u;
    }
    return negative ? DoubleDouble(1.0) / result : result;
}

// exp(r) - 1 for |r| <= ~0.35 by its Taylor series, summed until the terms drop below the precision.
inline DoubleDouble expm1_series(const DoubleDouble& r) {
    DoubleDouble term = r, sum = r;
    for (int k = 2; k < 60; ++k) {
        term = term * r / DoubleDouble(k);
        sum += term;
        if (std::fabs(term.hi) <= 1e-34 * std::fabs(sum.hi)) break;
    }
    return sum;
}

}  // namespace dd_detail

inline double value_of(const DoubleDouble& x) { return x.hi; }
inline bool is_finite(const DoubleDouble& x) { return std::isfinite(x.hi) && std::isfinite(x.lo); }

inline DoubleDouble abs(const DoubleDouble& x) { return x.hi < 0.0 ? -x : x; }

inline DoubleDouble sqrt(const DoubleDouble& a) {
    if (a.hi <= 0.0) return DoubleDouble(a.hi == 0.0 ? 0.0 : std::numeric_limits<double>::quiet_NaN());
    // x = sqrt(a.hi) to double; one Newton step x + (a - x^2) / (2 x) doubles the digits.
    const double x = std::sqrt(a.hi);
    DoubleDouble xx(x);
    return xx + (a - xx * xx) / DoubleDouble(2.0 * x);
}

inline DoubleDouble exp(const DoubleDouble& a) {
    if (a.hi > 709.78) return DoubleDouble(std::numeric_limits<double>::infinity());
    if (a.hi < -745.2) return DoubleDouble(0.0);
    if (a.hi == 0.0) return DoubleDouble(1.0);
    // a = k ln 2 + r with |r| <= ln 2 / 2; exp(r) = (1 + expm1(r / 2^10))^(2^10) by squaring e^x - 1 forms:
    // u = expm1(s) -> expm1(2 s) = u (2 + u), which keeps the small quantity (no cancellation).
    const double k = std::nearbyint(a.hi / 0.6931471805599453);
    const DoubleDouble r = (a - dd_detail::ln2() * DoubleDouble(k));
    DoubleDouble u = dd_detail::expm1_series(dd_detail::ldexp(r, -10));
    for (int i = 0; i < 10; ++i) u = u * (DoubleDouble(2.0) + u);
    return dd_detail::ldexp(u + DoubleDouble(1.0), static_cast<int>(k));
}

// e^a - 1 without cancellation for small |a|.
inline DoubleDouble expm1(const DoubleDouble& a) {
    if (std::fabs(a.hi) < 0.35) {
        DoubleDouble u = dd_detail::expm1_series(dd_detail::ldexp(a, -4));
        for (int i = 0; i < 4; ++i) u = u * (DoubleDouble(2.0) + u);
        return u;
    }
    return exp(a) - DoubleDouble(1.0);
}

inline DoubleDouble log(const DoubleDouble& a) {
    if (a.hi <= 0.0) {
        return DoubleDouble(a.hi == 0.0 ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN());
    }
    if (a.hi == 1.0 && a.lo == 0.0) return DoubleDouble(0.0);
    // x = log(a.hi); x + a e^-x - 1 (one Newton step on e^x = a); e^-x a - 1 via expm1 keeps the accuracy.
    DoubleDouble x(std::log(a.hi));
    x = x + (a * exp(-x) - DoubleDouble(1.0));
    return x;
}

inline DoubleDouble pow(const DoubleDouble& x, const DoubleDouble& y) {
    // Integer exponents of any sign by repeated squaring (exact-ish, and x < 0 allowed); otherwise exp(y log x).
    if (y.lo == 0.0 && y.hi == std::nearbyint(y.hi) && std::fabs(y.hi) < 1e9) {
        long m = static_cast<long>(y.hi);
        const bool negative = m < 0;
        if (negative) m = -m;
        DoubleDouble result(1.0), base = x;
        while (m) {
            if (m & 1L) result *= base;
            base *= base;
            m >>= 1;
        }
        return negative ? DoubleDouble(1.0) / result : result;
    }
    return exp(y * log(x));
}

namespace dd_detail {
// sin and cos of |r| <= pi/4 by their Taylor series.
inline void sin_cos_reduced(const DoubleDouble& r, DoubleDouble& s, DoubleDouble& c) {
    const DoubleDouble r2 = r * r;
    DoubleDouble term = r;
    s = r;
    for (int k = 3; k < 80; k += 2) {
        term = -term * r2 / DoubleDouble(static_cast<double>(k) * (k - 1));
        s += term;
        if (std::fabs(term.hi) <= 1e-34) break;
    }
    term = DoubleDouble(1.0);
    c = DoubleDouble(1.0);
    for (int k = 2; k < 80; k += 2) {
        term = -term * r2 / DoubleDouble(static_cast<double>(k) * (k - 1));
        c += term;
        if (std::fabs(term.hi) <= 1e-34) break;
    }
}
// x = q pi/2 + r, |r| <= pi/4; sin x and cos x from (sin r, cos r) and q mod 4.
inline void sin_cos(const DoubleDouble& x, DoubleDouble& s, DoubleDouble& c) {
    const double q = std::nearbyint(x.hi / 1.5707963267948966);
    const DoubleDouble r = x - half_pi() * DoubleDouble(q);
    DoubleDouble sr, cr;
    sin_cos_reduced(r, sr, cr);
    long m = static_cast<long>(std::fmod(q, 4.0));
    if (m < 0) m += 4;
    switch (m) {
        case 0: s = sr; c = cr; break;
        case 1: s = cr; c = -sr; break;
        case 2: s = -sr; c = -cr; break;
        default: s = -cr; c = sr; break;
    }
}
}  // namespace dd_detail

inline DoubleDouble sin(const DoubleDouble& x) { DoubleDouble s, c; dd_detail::sin_cos(x, s, c); return s; }
inline DoubleDouble cos(const DoubleDouble& x) { DoubleDouble s, c; dd_detail::sin_cos(x, s, c); return c; }
inline DoubleDouble tan(const DoubleDouble& x) { DoubleDouble s, c; dd_detail::sin_cos(x, s, c); return s / c; }
inline DoubleDouble sinh(const DoubleDouble& x) {
    if (std::fabs(x.hi) > 709.0) return DoubleDouble(x.hi > 0 ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity());
    const DoubleDouble u = expm1(x);
    // sinh x = (e^x - e^-x)/2 = (u + u/(1 + u))/2 with u = e^x - 1: no cancellation near 0.
    return (u + u / (DoubleDouble(1.0) + u)) * DoubleDouble(0.5);
}
inline DoubleDouble cosh(const DoubleDouble& x) {
    if (std::fabs(x.hi) > 709.0) return DoubleDouble(std::numeric_limits<double>::infinity());
    const DoubleDouble e = exp(abs(x));
    return (e + DoubleDouble(1.0) / e) * DoubleDouble(0.5);
}
inline DoubleDouble tanh(const DoubleDouble& x) {
    if (x.hi > 40.0) return DoubleDouble(1.0);
    if (x.hi < -40.0) return DoubleDouble(-1.0);
    // tanh x = u / (u + 2), u = e^(2x) - 1.
    const DoubleDouble u = expm1(DoubleDouble(2.0) * x);
    return u / (u + DoubleDouble(2.0));
}

// ---- decimal strings: the 40-digit constants of generated code -----------------------------------------
// Digits are accumulated in double-double (exact while the integer is below 2^106, ~31 digits; then one
// rounding per digit) and scaled by a power of ten: a few units in the last place of the result.
inline DoubleDouble parse_decimal(const char* text) {
    const char* c = text;
    while (*c == ' ') ++c;
    bool negative = false;
    if (*c == '+' || *c == '-') { negative = *c == '-'; ++c; }
    DoubleDouble mantissa(0.0);
    int exponent = 0, digits = 0;
    bool point = false;
    for (; *c; ++c) {
        if (*c == '.') { point = true; continue; }
        if (*c < '0' || *c > '9') break;
        if (digits < 36) {
            mantissa = mantissa * DoubleDouble(10.0) + DoubleDouble(static_cast<double>(*c - '0'));
            if (mantissa.hi != 0.0) ++digits;
            if (point) --exponent;
        } else if (!point) {
            ++exponent;
        }
    }
    if (*c == 'e' || *c == 'E') exponent += std::atoi(c + 1);
    DoubleDouble value = exponent >= 0 ? mantissa * dd_detail::pow10(exponent) : mantissa / dd_detail::pow10(-exponent);
    return negative ? -value : value;
}

template <> struct constant_maker<DoubleDouble> {
    static DoubleDouble make(double, const char* decimal) { return parse_decimal(decimal); }
};

}  // namespace symsens
