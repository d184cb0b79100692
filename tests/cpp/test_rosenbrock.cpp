// Rosenbrock stepper tests (symsens_rosenbrock.hpp): Rodas4, Rodas5P (all suites); ROS3P, ROS2, Rodas3 (order).
#include "one_step_suite.hpp"
#include "symsens_rosenbrock.hpp"
#include "tableaux.hpp"

#define ROSENBROCK_FACTORY(Name, label, function)                                                     \
    struct Name {                                                                                     \
        static constexpr const char* name = label;                                                    \
        static constexpr int error_order = tableaux::function##_error_order;                          \
        template <class T> static auto make(int n, const symsens::Options& o, bool autonomous) {      \
            return symsens::Rosenbrock<T>(tableaux::function<T>(), n, o, autonomous);                 \
        }                                                                                             \
    };

ROSENBROCK_FACTORY(Rodas4, "rodas4", rodas4)
ROSENBROCK_FACTORY(Rodas5P, "rodas5p", rodas5p)
ROSENBROCK_FACTORY(Rodas3, "rodas3", rodas3)
ROSENBROCK_FACTORY(Ros3P, "ros3p", ros3p)
ROSENBROCK_FACTORY(Ros2, "ros2", ros2)

// f_t of the non-autonomous problem: exact (the model over Dual<T, 1> in t, the default) and by the forward
// difference of RODAS (the fallback for problems that are neither ModelProblem nor AugmentedProblem).
void time_derivative_case() {
    for (int difference = 0; difference < 2; ++difference) {
        auto o = test::options(1e-8, 1e-10, Rodas4::error_order);
        auto stepper = Rodas4::make<double>(2, o, false);
        stepper.time_difference = difference != 0;
        auto r = test::run_one_step<double, double, test::Nonlinear>(stepper, {1.0}, {1.0, 1.0}, 0.0, 2.0, o);
        const auto ex = test::Nonlinear::exact(2.0, 1.0);
        const double e = std::max(std::fabs(r.y[0] - ex[0]), std::fabs(r.y[1] - ex[1]));
        test::Json().add("kind", "time_derivative").add("method", "rodas4").add("difference", difference)
            .add("error", e).stats(r.stats).print();
    }
}

int main() {
    time_derivative_case();
    test::one_step_all<Rodas4>();
    test::one_step_all<Rodas5P>();
    test::order_suite<Rodas3>();
    test::order_suite<Ros3P>();
    test::order_suite<Ros2>();
    return 0;
}
