// Radau IIA (3 stages, order 5) stepper tests (symsens_radau.hpp).
#include "one_step_suite.hpp"
#include "symsens_radau.hpp"
#include "tableaux.hpp"

struct Radau5 {
    static constexpr const char* name = "radau-iia-3";
    static constexpr int error_order = 4;
    template <class T> static auto make(int n, const symsens::Options& o, bool) {
        return symsens::RadauIIA3<T>(tableaux::radau_iia_3<T>(), n, o);
    }
};

// Residuals of the dense solvers on random 7 x 7 systems with pivoting: DenseLu and ComplexLu (ours) and
// symsens::Lu (symsens_solver.hpp, see the report: it interleaves the row interchanges with the substitution).
void linear_algebra() {
    unsigned state = 12345u;
    auto uniform = [&state]() { state = state * 1664525u + 1013904223u; return (state >> 8) / double(1u << 24) - 0.5; };
    const int n = 7;
    double dense = 0, complex = 0, lu = 0;
    for (int trial = 0; trial < 20; ++trial) {
        std::vector<double> A(n * n), B(n * n), b(n), bi(n);
        for (auto& v : A) v = uniform();
        for (auto& v : B) v = uniform();
        for (auto& v : b) v = uniform();
        for (auto& v : bi) v = uniform();
        symsens::DenseLu<double> d;
        symsens::Lu<double> l;
        symsens::ComplexLu<double> c;
        d.factor(A.data(), n);
        l.factor(A.data(), n);
        c.factor(A.data(), B.data(), n);
        auto x = b, y = b, zr = b, zi = bi;
        d.solve(x.data());
        l.solve(y.data());
        c.solve(zr.data(), zi.data());
        for (int i = 0; i < n; ++i) {
            double rx = -b[i], ry = -b[i], rr = -b[i], ri = -bi[i];
            for (int j = 0; j < n; ++j) {
                rx += A[i * n + j] * x[j];
                ry += A[i * n + j] * y[j];
                rr += A[i * n + j] * zr[j] - B[i * n + j] * zi[j];
                ri += A[i * n + j] * zi[j] + B[i * n + j] * zr[j];
            }
            dense = std::max(dense, std::fabs(rx));
            lu = std::max(lu, std::fabs(ry));
            complex = std::max(complex, std::max(std::fabs(rr), std::fabs(ri)));
        }
    }
    test::Json().add("kind", "linear_algebra").add("dense_lu", dense).add("complex_lu", complex).add("solver_lu", lu)
        .print();
}

int main() {
    linear_algebra();
    test::one_step_all<Radau5>();
    return 0;
}
