// BDF / NDF tests (symsens_bdf.hpp): fixed order and step from an exact history (orders 1-5), and the
// variable-order adaptive solver through the shared suites.
#include "one_step_suite.hpp"
#include "symsens_bdf.hpp"

struct Bdf {
    static constexpr const char* name = "bdf";
    static constexpr int error_order = 2;  // unused by drive_bdf (beta1/beta2 of the one-step controller)
    template <class T> static auto make(int n, const symsens::Options&, bool) {
        return symsens::Bdf<T>(n, symsens::BdfSettings{}, symsens::bdf_coefficients<T>(true));
    }
};

// Fixed order k and step h from exact values y(-j h), j = 0..k+1: the global error at t1 is O(h^k).
template <class Model>
void fixed_order_case(const char* label, const char* problem, int k, bool ndf, double param, double t1) {
    for (int N : test::order_step_counts()) {
        if (N < 8) continue;  // the exact history reaches back to t = -(k+1) h
        const double h = t1 / N;
        const int n = Model::n_states;
        symsens::BdfSettings s;
        s.fixed_order = k;
        symsens::Bdf<double> stepper(n, s, symsens::bdf_coefficients<double>(ndf));
        std::vector<double> past;
        for (int j = 0; j < k + 2; ++j) {
            const auto y = Model::exact(-j * h, param);
            past.insert(past.end(), y.begin(), y.end());
        }
        stepper.set_history(k, past.data());
        auto o = test::fixed_options(h, k + 1);
        const auto y0 = Model::exact(0.0, param);
        auto r = test::run_one_step<double, double, Model>(stepper, {param}, y0, 0.0, t1, o);
        const auto ex = Model::exact(t1, param);
        double e = 0;
        for (int i = 0; i < n; ++i) e = std::max(e, std::fabs(r.y[i] - ex[i]));
        test::Json().add("kind", "order").add("method", label).add("problem", problem).add("n", N).add("h", h)
            .add("error", e).add("status", r.status).print();
    }
}

int main() {
    const char* labels[] = {"", "bdf1", "bdf2", "bdf3", "bdf4", "bdf5"};
    for (int k = 1; k <= 5; ++k) {
        fixed_order_case<test::Linear>(labels[k], "linear", k, false, -2.0, 1.0);
        fixed_order_case<test::Nonlinear>(labels[k], "nonlinear", k, false, 1.0, 1.0);
    }
    fixed_order_case<test::Linear>("ndf2", "linear", 2, true, -2.0, 1.0);
    fixed_order_case<test::Nonlinear>("ndf2", "nonlinear", 2, true, 1.0, 1.0);
    fixed_order_case<test::Linear>("ndf4", "linear", 4, true, -2.0, 1.0);
    fixed_order_case<test::Nonlinear>("ndf4", "nonlinear", 4, true, 1.0, 1.0);
    test::adaptive_suite<Bdf>();
    test::discrete_suite<Bdf>();
    test::forward_suite<Bdf>();
    return 0;
}
