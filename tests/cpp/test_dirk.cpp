// SDIRK / ESDIRK stepper tests (symsens_dirk.hpp): Kvaerno5, TR-BDF2, SDIRK4 (and Kvaerno3/4, SDIRK2 for order).
#include "one_step_suite.hpp"
#include "symsens_dirk.hpp"
#include "tableaux.hpp"

#define DIRK_FACTORY(Name, label, function)                                                           \
    struct Name {                                                                                     \
        static constexpr const char* name = label;                                                    \
        static constexpr int error_order = tableaux::function##_error_order;                          \
        template <class T> static auto make(int n, const symsens::Options& o, bool) {                 \
            return symsens::DiagonallyImplicitRungeKutta<T>(tableaux::function<T>(), n, o);           \
        }                                                                                             \
    };

DIRK_FACTORY(Kvaerno5, "kvaerno5", kvaerno5)
DIRK_FACTORY(Kvaerno4, "kvaerno4", kvaerno4)
DIRK_FACTORY(Kvaerno3, "kvaerno3", kvaerno3)
DIRK_FACTORY(TrBdf2, "tr-bdf2", tr_bdf2)
DIRK_FACTORY(Sdirk4, "sdirk4", sdirk4)
DIRK_FACTORY(Sdirk2, "sdirk2", sdirk2)

int main() {
    test::one_step_all<Kvaerno5>();
    test::one_step_all<TrBdf2>();
    test::one_step_all<Sdirk4>();
    test::order_suite<Kvaerno4>();
    test::order_suite<Kvaerno3>();
    test::order_suite<Sdirk2>();
    return 0;
}
