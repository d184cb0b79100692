"""Explicit Runge–Kutta methods and embedded pairs, exact coefficients with their sources.

Every constructor returns a :class:`~symsens.schemes._tableau.ButcherTableau`; ``b_error`` holds the
weights ``bhat`` of the embedded companion (the error estimate is ``h sum_i (b_i - bhat_i) k_i``).

=============  ======  =========  ======================================================================
name           stages  order      source of the coefficients
=============  ======  =========  ======================================================================
``euler``      1       1          Euler (1768)
``heun``       2       2 (1)      Heun (1900), Euler embedded
``rk4``        4       4          Kutta (1901)
``bs3``        4       3 (2)      Bogacki & Shampine (1989), FSAL
``dopri5``     7       5 (4)      Dormand & Prince (1980), FSAL
``tsit5``      7       5 (4)      Tsitouras (2011), FSAL; 85-digit decimals (see :func:`tsitouras5`)
``verner6``    9       6 (5)      Verner's "efficient" 6(5) pair, exact rationals, FSAL
``verner7``    10      7 (6)      Verner's "efficient" 7(6) pair, exact rationals
=============  ======  =========  ======================================================================
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import sympy

from ._tableau import ButcherTableau

__all__ = [
    "euler",
    "heun",
    "rk4",
    "bogacki_shampine3",
    "dormand_prince5",
    "tsitouras5",
    "verner6",
    "verner7",
]

R = sympy.Rational


def _explicit_A(rows: Sequence[Sequence[sympy.Expr]]) -> list[list[sympy.Expr]]:
    """Square strictly-lower-triangular ``A`` from its rows below the diagonal (``rows[i]`` = row ``i+1``)."""
    s = len(rows) + 1
    A = [[sympy.Integer(0)] * s for _ in range(s)]
    for i, row in enumerate(rows, start=1):
        if len(row) > i:
            raise ValueError(f"row {i} of an explicit tableau has {len(row)} entries, at most {i} allowed")
        for j, value in enumerate(row):
            A[i][j] = value
    return A


@functools.lru_cache(maxsize=None)
def euler() -> ButcherTableau:
    """Forward Euler, ``y1 = y0 + h f(t0, y0)``, order 1.

    Reference: L. Euler, Institutionum calculi integralis, Vol. I (1768); Hairer, Nørsett & Wanner I,
    Sect. I.7.
    """
    return ButcherTableau(
        name="euler",
        A=[[0]],
        b=[1],
        c=[0],
        order=1,
        reference="L. Euler, Institutionum calculi integralis (1768); Hairer, Norsett, Wanner, Solving ODEs I, Sect. I.7",
    )


@functools.lru_cache(maxsize=None)
def heun() -> ButcherTableau:
    """Heun's method (explicit trapezoid), order 2, with forward Euler as the embedded order-1 solution::

        0 |
        1 | 1
        --+---------
          | 1/2 1/2      (order 2)
          | 1   0        (order 1, embedded)

    Reference: K. Heun, Z. Math. Phys. 45 (1900) 23-38; the Heun–Euler pair as in SUNDIALS ARKODE
    (``ARKODE_HEUN_EULER_2_1_2``) and Hairer, Nørsett & Wanner I, Sect. II.1.
    """
    return ButcherTableau(
        name="heun",
        A=_explicit_A([[1]]),
        b=[R(1, 2), R(1, 2)],
        c=[0, 1],
        order=2,
        b_error=[1, 0],
        embedded_order=1,
        reference=(
            "K. Heun, Neue Methoden zur approximativen Integration der Differentialgleichungen einer "
            "unabhaengigen Veraenderlichen, Z. Math. Phys. 45 (1900) 23-38; Hairer, Norsett, Wanner, "
            "Solving ODEs I, Sect. II.1"
        ),
    )


@functools.lru_cache(maxsize=None)
def rk4() -> ButcherTableau:
    """The classical Runge–Kutta method of order 4 (no embedded estimator).

    Reference: W. Kutta, Z. Math. Phys. 46 (1901) 435-453; Hairer, Nørsett & Wanner I, Sect. II.1.
    """
    return ButcherTableau(
        name="rk4",
        A=_explicit_A([[R(1, 2)], [0, R(1, 2)], [0, 0, 1]]),
        b=[R(1, 6), R(1, 3), R(1, 3), R(1, 6)],
        c=[0, R(1, 2), R(1, 2), 1],
        order=4,
        reference=(
            "W. Kutta, Beitrag zur naeherungsweisen Integration totaler Differentialgleichungen, "
            "Z. Math. Phys. 46 (1901) 435-453; Hairer, Norsett, Wanner, Solving ODEs I, Sect. II.1"
        ),
    )


@functools.lru_cache(maxsize=None)
def bogacki_shampine3() -> ButcherTableau:
    """Bogacki–Shampine 3(2) pair (the method of MATLAB's ``ode23``), FSAL.

    ``b`` (order 3) is the last row of ``A``; ``bhat = (7/24, 1/4, 1/3, 1/8)`` (order 2).

    Reference: P. Bogacki, L. F. Shampine, "A 3(2) pair of Runge-Kutta formulas", Appl. Math. Lett.
    2(4) (1989) 321-325.
    """
    b = [R(2, 9), R(1, 3), R(4, 9), 0]
    return ButcherTableau(
        name="bs3",
        A=_explicit_A([[R(1, 2)], [0, R(3, 4)], b[:3]]),
        b=b,
        c=[0, R(1, 2), R(3, 4), 1],
        order=3,
        b_error=[R(7, 24), R(1, 4), R(1, 3), R(1, 8)],
        embedded_order=2,
        reference="P. Bogacki, L. F. Shampine, A 3(2) pair of Runge-Kutta formulas, Appl. Math. Lett. 2(4) (1989) 321-325",
    )


@functools.lru_cache(maxsize=None)
def dormand_prince5() -> ButcherTableau:
    """Dormand–Prince 5(4) pair (DOPRI5, MATLAB ``ode45``, scipy ``RK45``), FSAL.

    Reference: J. R. Dormand, P. J. Prince, "A family of embedded Runge-Kutta formulae", J. Comput. Appl.
    Math. 6(1) (1980) 19-26; Hairer, Nørsett & Wanner I, Table II.5.2.
    """
    b = [R(35, 384), 0, R(500, 1113), R(125, 192), R(-2187, 6784), R(11, 84), 0]
    A = _explicit_A(
        [
            [R(1, 5)],
            [R(3, 40), R(9, 40)],
            [R(44, 45), R(-56, 15), R(32, 9)],
            [R(19372, 6561), R(-25360, 2187), R(64448, 6561), R(-212, 729)],
            [R(9017, 3168), R(-355, 33), R(46732, 5247), R(49, 176), R(-5103, 18656)],
            b[:6],
        ]
    )
    return ButcherTableau(
        name="dopri5",
        A=A,
        b=b,
        c=[0, R(1, 5), R(3, 10), R(4, 5), R(8, 9), 1, 1],
        order=5,
        b_error=[R(5179, 57600), 0, R(7571, 16695), R(393, 640), R(-92097, 339200), R(187, 2100), R(1, 40)],
        embedded_order=4,
        reference=(
            "J. R. Dormand, P. J. Prince, A family of embedded Runge-Kutta formulae, J. Comput. Appl. Math. "
            "6(1) (1980) 19-26; Hairer, Norsett, Wanner, Solving ODEs I, Table II.5.2"
        ),
    )


def _dec(text: str) -> sympy.Rational:
    """The exact rational value of a published decimal string (never a binary float)."""
    return sympy.Rational(text)


@functools.lru_cache(maxsize=None)
def tsitouras5() -> ButcherTableau:
    """Tsitouras 5(4) pair (``Tsit5``), FSAL, order 5 with an order-4 companion.

    Source and exactness.  Tsitouras (2011) prints 16-digit decimals.  We store the 85-digit
    values of the same pair published with OrdinaryDiffEq.jl (``Tsit5ConstantCacheActual`` for generic
    number types, ``lib/OrdinaryDiffEqTsit5/src/tsit_tableaus.jl``), each as the exact Rational of its
    decimal string; ``c2 = 0.161``, ``c3 = 0.327``, ``c4 = 0.9``, ``b2 = 1/100`` and ``bhat7 = 1/66`` are exact
    there.  These values satisfy ``sum(b) = 1``, ``A e = c`` and every order condition of the pair to about
    ``1e-83`` (verified in the tests), so ``tolerance = 1e-80``.  The tests also compare them with nodepy's
    independent double-precision ``Tsit5`` (agreement to ~1e-15).

    Care points (checked by the tests):

    * ``b`` (order 5) is the last row of ``A`` (FSAL, ``b_7 = 0``); ``bhat`` (order 4, ``bhat_7 = 1/66``) is the
      vector OrdinaryDiffEq.jl keeps in comments, its error estimate using ``btilde = bhat - b``.  (At the
      commit we read, OrdinaryDiffEq's generic ``constructTsit5ExplicitRK`` passes ``bhat`` as the solution
      weights and ``b`` as the embedded ones, and its big-float branch replaces ``A`` by crude rational
      approximations such as ``a21 = 14/87``; neither is used here.)
    * the first column is consistent with ``a_i1 = c_i - sum_{j>1} a_ij`` to the same 1e-83.

    Reference: Ch. Tsitouras, "Runge-Kutta pairs of order 5(4) satisfying only the first column simplifying
    assumption", Comput. Math. Appl. 62 (2011) 770-775.
    """
    c5 = _dec(".9800255409045096857298102862870245954942137979563024768854764293221195950761080302604")
    b = [
        _dec(".9646076681806522951816731316512876333711995238157997181903319145764851595234062815396e-1"),
        R(1, 100),
        _dec(".4798896504144995747752495322905965199130404621990332488332634944254542060153074523509"),
        _dec("1.379008574103741893192274821856872770756462643091360525934940067397245698027561293331"),
        _dec("-3.290069515436080679901047585711363850115683290894936158531296799594813811049925401677"),
        _dec("2.324710524099773982415355918398765796109060233222962411944060046314465391054716027841"),
        0,
    ]
    A = _explicit_A(
        [
            [R(161, 1000)],
            [
                _dec("-.8480655492356988544426874250230774675121177393430391537369234245294192976164141156943e-2"),
                _dec(".3354806554923569885444268742502307746751211773934303915373692342452941929761641411569"),
            ],
            [
                _dec("2.897153057105493432130432594192938764924887287701866490314866693455023795137503079289"),
                _dec("-6.359448489975074843148159912383825625952700647415626703305928850207288721235210244366"),
                _dec("4.362295432869581411017727318190886861027813359713760212991062156752264926097707165077"),
            ],
            [
                _dec("5.325864828439256604428877920840511317836476253097040101202360397727981648835607691791"),
                _dec("-11.74888356406282787774717033978577296188744178259862899288666928009020615663593781589"),
                _dec("7.495539342889836208304604784564358155658679161518186721010132816213648793440552049753"),
                _dec("-.9249506636175524925650207933207191611349983406029535244034750452930469056411389539635e-1"),
            ],
            [
                _dec("5.861455442946420028659251486982647890394337666164814434818157239052507339770711679748"),
                _dec("-12.92096931784710929170611868178335939541780751955743459166312250439928519268343184452"),
                _dec("8.159367898576158643180400794539253485181918321135053305748355423955009222648673734986"),
                _dec("-.7158497328140099722453054252582973869127213147363544882721139659546372402303777878835e-1"),
                _dec("-.2826905039406838290900305721271224146717633626879770007617876201276764571291579142206e-1"),
            ],
            b[:6],
        ]
    )
    b_hat = [
        _dec(".9468075576583945807478876255758922856117527357724631226139574065785592789071067303271e-1"),
        _dec(".9183565540343253096776363936645313759813746240984095238905939532922955247253608687270e-2"),
        _dec(".4877705284247615707855642599631228241516691959761363774365216240304071651579571959813"),
        _dec("1.234297566930478985655109673884237654035539930748192848315425833500484878378061439761"),
        _dec("-2.707712349983525454881109975059321670689605166938197378763992255714444407154902012702"),
        _dec("1.866628418170587035753719399566211498666255505244122593996591602841258328965767580089"),
        R(1, 66),
    ]
    return ButcherTableau(
        name="tsit5",
        A=A,
        b=b,
        c=[0, R(161, 1000), R(327, 1000), R(9, 10), c5, 1, 1],
        order=5,
        b_error=b_hat,
        embedded_order=4,
        tolerance=R(1, 10**80),
        reference=(
            "Ch. Tsitouras, Runge-Kutta pairs of order 5(4) satisfying only the first column simplifying "
            "assumption, Comput. Math. Appl. 62 (2011) 770-775; 85-digit values from "
            "OrdinaryDiffEq.jl, lib/OrdinaryDiffEqTsit5/src/tsit_tableaus.jl"
        ),
    )


@functools.lru_cache(maxsize=None)
def verner6() -> ButcherTableau:
    """Verner's "most efficient" 6(5) pair, 9 stages, FSAL; exact rationals.

    ``b`` (order 6) is the last row of ``A``; ``bhat`` (order 5) uses ``bhat_9 = 1/30``.  The rationals are
    Verner's (the 6(5) "efficient" pair on his web page), transcribed through OrdinaryDiffEq.jl
    (``Vern6Tableau`` for generic number types, ``lib/OrdinaryDiffEqVerner/src/verner_tableaus.jl``); the
    tests verify all 37 order conditions of order <= 6 for ``b`` and the 20 of order <= 5 for ``bhat``
    exactly.

    Reference: J. H. Verner, "Numerically optimal Runge-Kutta pairs with interpolants", Numer. Algorithms
    53 (2010) 383-396; coefficients from J. H. Verner, "Jim Verner's Refuge for Runge-Kutta Pairs",
    https://www.sfu.ca/~jverner/ (6(5) "efficient" pair).
    """
    b = [
        R(382735282417, 11129397249634),
        0,
        0,
        R(5535620703125000, 21434089949505429),
        R(13867056347656250, 32943296570459319),
        R(626271188750, 142160006043),
        R(-51160788125000, 289890548217),
        R(163193540017, 946795234),
        0,
    ]
    A = _explicit_A(
        [
            [R(3, 50)],
            [R(519479, 27000000), R(2070721, 27000000)],
            [R(1439, 40000), 0, R(4317, 40000)],
            [R(109225017611, 82828840000), 0, R(-417627820623, 82828840000), R(43699198143, 10353605000)],
            [
                R(-8036815292643907349452552172369, 191934985946683241245914401600),
                0,
                R(246134619571490020064824665, 1543816496655405117602368),
                R(-13880495956885686234074067279, 113663489566254201783474344),
                R(755005057777788994734129, 136485922925633667082436),
            ],
            [
                R(-1663299841566102097180506666498880934230261, 30558424506156170307020957791311384232000),
                0,
                R(130838124195285491799043628811093033, 631862949514135618861563657970240),
                R(-3287100453856023634160618787153901962873, 20724314915376755629135711026851409200),
                R(2771826790140332140865242520369241, 396438716042723436917079980147600),
                R(-1799166916139193, 96743806114007800),
            ],
            [
                R(-832144750039369683895428386437986853923637763, 15222974550069600748763651844667619945204887),
                0,
                R(818622075710363565982285196611368750, 3936576237903728151856072395343129),
                R(-9818985165491658464841194581385463434793741875, 61642597962658994069869370923196463581866011),
                R(31796692141848558720425711042548134769375, 4530254033500045975557858016006308628092),
                R(-14064542118843830075, 766928748264306853644),
                R(-1424670304836288125, 2782839104764768088217),
            ],
            b[:8],
        ]
    )
    b_hat = [
        R(124310637869885675646798613, 2890072468789466426596827670),
        0,
        0,
        R(265863151737164990361330921875, 1113197271463372303940319369579),
        R(3075493557174030806536302953125, 6843749922042323876546949699876),
        R(67798000008733879813263055, 29532792147666737550036372),
        R(-1099436585155390846238326375, 15055706496446408859196167),
        R(26171252653086373181571802, 368794478890732346033505),
        R(1, 30),
    ]
    return ButcherTableau(
        name="verner6",
        A=A,
        b=b,
        c=[0, R(3, 50), R(1439, 15000), R(1439, 10000), R(4973, 10000), R(389, 400), R(1999, 2000), 1, 1],
        order=6,
        b_error=b_hat,
        embedded_order=5,
        reference=(
            "J. H. Verner, Numerically optimal Runge-Kutta pairs with interpolants, Numer. Algorithms 53 (2010) "
            "383-396; 'efficient' 6(5) pair from https://www.sfu.ca/~jverner/, as transcribed in OrdinaryDiffEq.jl "
            "lib/OrdinaryDiffEqVerner/src/verner_tableaus.jl (Vern6Tableau)"
        ),
    )


@functools.lru_cache(maxsize=None)
def verner7() -> ButcherTableau:
    """Verner's "most efficient" 7(6) pair, 10 stages (not FSAL); exact rationals.

    ``b`` (order 7) uses stages 1, 4-9; ``bhat`` (order 6) uses stages 1, 4-7 and 10.  Transcribed like
    :func:`verner6` (OrdinaryDiffEq.jl ``Vern7Tableau``); the tests verify the 85 order conditions of order
    <= 7 for ``b`` and the 37 of order <= 6 for ``bhat`` exactly.

    Reference: J. H. Verner, Numer. Algorithms 53 (2010) 383-396; 7(6) "efficient" pair from
    https://www.sfu.ca/~jverner/.
    """
    A = _explicit_A(
        [
            [R(1, 200)],
            [R(-4361, 4050), R(2401, 2025)],
            [R(49, 1200), 0, R(49, 400)],
            [R(2454451729, 3841600000), 0, R(-9433712007, 3841600000), R(4364554539, 1920800000)],
            [
                R(-6187101755456742839167388910402379177523537620, 2324599620333464857202963610201679332423082271),
                0,
                R(27569888999279458303270493567994248533230000, 2551701010245296220859455115479340650299761),
                R(-37368161901278864592027018689858091583238040000, 4473131870960004275166624817435284159975481033),
                R(1392547243220807196190880383038194667840000000, 1697219131380493083996999253929006193143549863),
            ],
            [
                R(11272026205260557297236918526339, 1857697188743815510261537500000),
                0,
                R(-48265918242888069, 1953194276993750),
                R(26726983360888651136155661781228, 1308381343805114800955157615625),
                R(-2090453318815827627666994432, 1096684189897834170412307919),
                R(1148577938985388929671582486744843844943428041509, 1141532118233823914568777901158338927629837500000),
            ],
            [
                R(1304457204588839386329181466225966641, 108211771565488329642169667802016000),
                0,
                R(-1990261989751005, 40001418792832),
                R(2392691599894847687194643439066780106875, 58155654089143548047476915856270826016),
                R(-1870932273351008733802814881998561250, 419326053051486744762255151208232123),
                R(
                    1043329047173803328972823866240311074041739158858792987034783181,
                    510851127745017966999893975119259285040213723744255237522144000,
                ),
                R(-311918858557595100410788125, 3171569057622789618800376448),
            ],
            [
                R(17579784273699839132265404100877911157, 1734023495717116205617154737841023480),
                0,
                R(-18539365951217471064750, 434776548575709731377),
                R(447448655912568142291911830292656995992000, 12511202807447096607487664209063950964109),
                R(-65907597316483030274308429593905808000000, 15158061430635748897861852383197382130691),
                R(
                    273847823027445129865693702689010278588244606493753883568739168819449761,
                    136252034448398939768371761610231099586032870552034688235302796640584360,
                ),
                R(694664732797172504668206847646718750, 1991875650119463976442052358853258111),
                R(-19705319055289176355560129234220800, 72595753317320295604316217197876507),
            ],
            [
                R(-511858190895337044664743508805671, 11367030248263048398341724647960),
                0,
                R(2822037469238841750, 15064746656776439),
                R(-23523744880286194122061074624512868000, 152723005449262599342117017051789699),
                R(10685036369693854448650967542704000000, 575558095977344459903303055137999707),
                R(
                    -6259648732772142303029374363607629515525848829303541906422993,
                    876479353814142962817551241844706205620792843316435566420120,
                ),
                R(17380896627486168667542032602031250, 13279937889697320236613879977356033),
                0,
                0,
            ],
        ]
    )
    b = [
        R(96762636172307789, 2051985304794103980),
        0,
        0,
        R(312188947591288252500000, 1212357694274963646019729),
        R(13550580884964304000000000000, 51686919683339547115937980629),
        R(
            72367769693133178898676076432831566019684378142853445230956642801,
            475600216991873963561768100160364792981629064220601844848928537580,
        ),
        R(1619421054120605468750, 3278200730370057108183),
        R(-66898316144057728000, 227310933007074849597),
        R(181081444637946577, 2226845467039736466),
        0,
    ]
    b_hat = [
        R(117807213929927, 2640907728177740),
        0,
        0,
        R(4758744518816629500000, 17812069906509312711137),
        R(1730775233574080000000000, 7863520414322158392809673),
        R(
            2682653613028767167314032381891560552585218935572349997,
            12258338284789875762081637252125169126464880985167722660,
        ),
        R(40977117022675781250, 178949401077111131341),
        0,
        0,
        R(2152106665253777, 106040260335225546),
    ]
    return ButcherTableau(
        name="verner7",
        A=A,
        b=b,
        c=[0, R(1, 200), R(49, 450), R(49, 300), R(911, 2000), R(3480084980, 5709648941), R(221, 250), R(37, 40), 1, 1],
        order=7,
        b_error=b_hat,
        embedded_order=6,
        reference=(
            "J. H. Verner, Numerically optimal Runge-Kutta pairs with interpolants, Numer. Algorithms 53 (2010) "
            "383-396; 'efficient' 7(6) pair from https://www.sfu.ca/~jverner/, as transcribed in OrdinaryDiffEq.jl "
            "lib/OrdinaryDiffEqVerner/src/verner_tableaus.jl (Vern7Tableau)"
        ),
    )
