//! Deterministic random SQL for the differential governance test.
//!
//! [`SqlGen`] draws read-only queries over the TPC-H tables of the demo mesh
//! (`customers.*`, `sales.*`, `supply.*`): filters, foreign-key joins (inner and
//! left), joins on masked text, self joins, aggregates with GROUP BY / HAVING,
//! correlated EXISTS and IN probes, scalar subqueries, window functions, CTEs,
//! derived tables and UNION / INTERSECT / EXCEPT. Predicates, join keys and group
//! keys lean on the columns that policies mask (`c_name`, `c_address`, `c_phone`,
//! `s_phone`, `s_acctbal`, `o_clerk`), and a share of the queries carries an
//! expression that may fail (a division by zero, a cast of masked text), so the
//! test compares the errors a user can provoke as well as the rows they see.
//! Predicates aim at mid-domain ranges and low-cardinality equalities so that
//! most queries return some rows.
//!
//! Every query runs through the governed gateway and through plain DataFusion
//! over a pre-filtered copy of the data; the two plans differ, and the results
//! are compared as multisets. A query must therefore have exactly one correct
//! outcome whatever plan runs it:
//! - LIMIT only after an ORDER BY over every output column; ROW_NUMBER, LAG,
//!   LEAD and FIRST_VALUE order by a key that is total within the partition;
//! - no floating point (no float literals, no AVG of integers; decimal literals
//!   are written as casts of strings), no volatile functions, no
//!   order-dependent aggregates (STRING_AGG, ARRAY_AGG);
//! - an expression that may fail appears only where every plan evaluates it on
//!   the same rows: the top-level output list, aggregate arguments, or the
//!   sole WHERE predicate of a single-table query. Never beside other
//!   conjuncts (AND may or may not evaluate its right side on rows the left
//!   side rejects), in a join condition or a subquery (a hash join may skip its
//!   probe side when its build side is empty), or under a LIMIT (TopK filters).

/// Share of queries, in percent, allowed one expression that may fail.
const ERROR_PRONE_PCT: u64 = 30;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ty {
    Int,
    Dec,
    Text,
    Date,
}

/// What a column holds, which decides the literals its predicates use.
#[derive(Clone, Copy)]
enum Dom {
    /// Integers in an inclusive range.
    Ints(i64, i64),
    /// Decimal amounts, compared with integer literals within the range.
    Money(i64, i64),
    /// Decimal fractions 0.00 up to the given number of hundredths.
    Hundredths(i64),
    /// Low-cardinality text.
    Words(&'static [&'static str]),
    /// `Customer#000000042`-style names: prefix and highest number.
    Numbered(&'static str, i64),
    /// Phone numbers such as `27-918-335-1736` (prefix = nation key + 10).
    Phone,
    /// Dates between 1992 and 1998.
    Dates,
    /// Free text, probed with these fragments.
    Free(&'static [&'static str]),
}

impl Dom {
    fn ty(self) -> Ty {
        match self {
            Self::Ints(..) => Ty::Int,
            Self::Money(..) | Self::Hundredths(_) => Ty::Dec,
            Self::Words(_) | Self::Numbered(..) | Self::Phone | Self::Free(_) => Ty::Text,
            Self::Dates => Ty::Date,
        }
    }
}

struct Col {
    name: &'static str,
    dom: Dom,
    masked: bool,
}

const fn col(name: &'static str, dom: Dom) -> Col {
    Col {
        name,
        dom,
        masked: false,
    }
}

const fn masked(name: &'static str, dom: Dom) -> Col {
    Col {
        name,
        dom,
        masked: true,
    }
}

struct Table {
    name: &'static str,
    alias: &'static str,
    /// Columns that order the table's rows totally (up to identical rows): the
    /// primary key, except that tiny scale factors repeat
    /// `(ps_partkey, ps_suppkey)`, so partsupp takes all its columns.
    key: &'static [&'static str],
    cols: &'static [Col],
}

const CUSTOMER: usize = 0;
const NATION: usize = 1;
const REGION: usize = 2;
const ORDERS: usize = 3;
const LINEITEM: usize = 4;
const SUPPLIER: usize = 5;
const PART: usize = 6;
const PARTSUPP: usize = 7;

const SEGMENTS: &[&str] = &["BUILDING", "AUTOMOBILE", "MACHINERY", "HOUSEHOLD", "FURNITURE"];
const NATIONS: &[&str] = &[
    "ALGERIA",
    "ARGENTINA",
    "BRAZIL",
    "CANADA",
    "EGYPT",
    "ETHIOPIA",
    "FRANCE",
    "GERMANY",
    "INDIA",
    "INDONESIA",
    "IRAN",
    "IRAQ",
    "JAPAN",
    "JORDAN",
    "KENYA",
    "MOROCCO",
    "MOZAMBIQUE",
    "PERU",
    "CHINA",
    "ROMANIA",
    "SAUDI ARABIA",
    "VIETNAM",
    "RUSSIA",
    "UNITED KINGDOM",
    "UNITED STATES",
];
const REGIONS: &[&str] = &["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"];
const ORDER_STATUS: &[&str] = &["F", "O", "P"];
const PRIORITIES: &[&str] = &["1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED", "5-LOW"];
const RETURN_FLAGS: &[&str] = &["A", "N", "R"];
const LINE_STATUS: &[&str] = &["F", "O"];
const INSTRUCTIONS: &[&str] = &["DELIVER IN PERSON", "COLLECT COD", "NONE", "TAKE BACK RETURN"];
const MODES: &[&str] = &["AIR", "MAIL", "SHIP", "TRUCK", "RAIL", "FOB", "REG AIR"];
const MANUFACTURERS: &[&str] = &[
    "Manufacturer#1",
    "Manufacturer#2",
    "Manufacturer#3",
    "Manufacturer#4",
    "Manufacturer#5",
];
const BRANDS: &[&str] = &[
    "Brand#11", "Brand#12", "Brand#13", "Brand#14", "Brand#15", "Brand#21", "Brand#22", "Brand#23", "Brand#24",
    "Brand#25", "Brand#31", "Brand#32", "Brand#33", "Brand#34", "Brand#35", "Brand#41", "Brand#42", "Brand#43",
    "Brand#44", "Brand#45", "Brand#51", "Brand#52", "Brand#53", "Brand#54", "Brand#55",
];
const COMMENT: &[&str] = &[
    "furiously",
    "carefully",
    "quickly",
    "final",
    "special",
    "pending",
    "ironic",
    "regular",
    "express",
    "deposits",
    "requests",
    "accounts",
    "packages",
    "ideas",
    "blithely",
    "slyly",
];
const ADDRESS: &[&str] = &["a", "e", "o", "A", "E", "0", "5", ","];
const COLORS: &[&str] = &[
    "green",
    "blue",
    "red",
    "almond",
    "antique",
    "navy",
    "rose",
    "powder",
    "smoke",
    "chocolate",
    "lace",
    "metallic",
    "khaki",
    "tomato",
    "ivory",
    "lime",
];
const TYPES: &[&str] = &[
    "STANDARD",
    "SMALL",
    "MEDIUM",
    "LARGE",
    "ECONOMY",
    "PROMO",
    "ANODIZED",
    "BURNISHED",
    "PLATED",
    "POLISHED",
    "BRUSHED",
    "TIN",
    "NICKEL",
    "BRASS",
    "STEEL",
    "COPPER",
];
const CONTAINERS: &[&str] = &[
    "SM", "LG", "MED", "JUMBO", "WRAP", "CASE", "BOX", "BAG", "JAR", "PKG", "PACK", "CAN", "DRUM",
];

static TABLES: [Table; 8] = [
    Table {
        name: "customers.customer",
        alias: "cu",
        key: &["c_custkey"],
        cols: &[
            col("c_custkey", Dom::Ints(1, 150)),
            masked("c_name", Dom::Numbered("Customer#", 150)),
            masked("c_address", Dom::Free(ADDRESS)),
            col("c_nationkey", Dom::Ints(0, 24)),
            masked("c_phone", Dom::Phone),
            col("c_acctbal", Dom::Money(-999, 9999)),
            col("c_mktsegment", Dom::Words(SEGMENTS)),
            col("c_comment", Dom::Free(COMMENT)),
        ],
    },
    Table {
        name: "customers.nation",
        alias: "na",
        key: &["n_nationkey"],
        cols: &[
            col("n_nationkey", Dom::Ints(0, 24)),
            col("n_name", Dom::Words(NATIONS)),
            col("n_regionkey", Dom::Ints(0, 4)),
            col("n_comment", Dom::Free(COMMENT)),
        ],
    },
    Table {
        name: "customers.region",
        alias: "re",
        key: &["r_regionkey"],
        cols: &[
            col("r_regionkey", Dom::Ints(0, 4)),
            col("r_name", Dom::Words(REGIONS)),
            col("r_comment", Dom::Free(COMMENT)),
        ],
    },
    Table {
        name: "sales.orders",
        alias: "od",
        key: &["o_orderkey"],
        cols: &[
            col("o_orderkey", Dom::Ints(1, 6000)),
            col("o_custkey", Dom::Ints(1, 150)),
            col("o_orderstatus", Dom::Words(ORDER_STATUS)),
            col("o_totalprice", Dom::Money(20000, 300000)),
            col("o_orderdate", Dom::Dates),
            col("o_orderpriority", Dom::Words(PRIORITIES)),
            masked("o_clerk", Dom::Numbered("Clerk#", 1000)),
            col("o_shippriority", Dom::Ints(0, 0)),
            col("o_comment", Dom::Free(COMMENT)),
        ],
    },
    Table {
        name: "sales.lineitem",
        alias: "li",
        key: &["l_orderkey", "l_linenumber"],
        cols: &[
            col("l_orderkey", Dom::Ints(1, 6000)),
            col("l_partkey", Dom::Ints(1, 200)),
            col("l_suppkey", Dom::Ints(1, 10)),
            col("l_linenumber", Dom::Ints(1, 7)),
            col("l_quantity", Dom::Money(1, 50)),
            col("l_extendedprice", Dom::Money(1000, 95000)),
            col("l_discount", Dom::Hundredths(10)),
            col("l_tax", Dom::Hundredths(8)),
            col("l_returnflag", Dom::Words(RETURN_FLAGS)),
            col("l_linestatus", Dom::Words(LINE_STATUS)),
            col("l_shipdate", Dom::Dates),
            col("l_commitdate", Dom::Dates),
            col("l_receiptdate", Dom::Dates),
            col("l_shipinstruct", Dom::Words(INSTRUCTIONS)),
            col("l_shipmode", Dom::Words(MODES)),
            col("l_comment", Dom::Free(COMMENT)),
        ],
    },
    Table {
        name: "supply.supplier",
        alias: "su",
        key: &["s_suppkey"],
        cols: &[
            col("s_suppkey", Dom::Ints(1, 10)),
            col("s_name", Dom::Numbered("Supplier#", 10)),
            col("s_address", Dom::Free(ADDRESS)),
            col("s_nationkey", Dom::Ints(0, 24)),
            masked("s_phone", Dom::Phone),
            masked("s_acctbal", Dom::Money(-999, 9999)),
            col("s_comment", Dom::Free(COMMENT)),
        ],
    },
    Table {
        name: "supply.part",
        alias: "pa",
        key: &["p_partkey"],
        cols: &[
            col("p_partkey", Dom::Ints(1, 200)),
            col("p_name", Dom::Free(COLORS)),
            col("p_mfgr", Dom::Words(MANUFACTURERS)),
            col("p_brand", Dom::Words(BRANDS)),
            col("p_type", Dom::Free(TYPES)),
            col("p_size", Dom::Ints(1, 50)),
            col("p_container", Dom::Free(CONTAINERS)),
            col("p_retailprice", Dom::Money(900, 2000)),
            col("p_comment", Dom::Free(COMMENT)),
        ],
    },
    Table {
        name: "supply.partsupp",
        alias: "ps",
        key: &["ps_partkey", "ps_suppkey", "ps_availqty", "ps_supplycost", "ps_comment"],
        cols: &[
            col("ps_partkey", Dom::Ints(1, 200)),
            col("ps_suppkey", Dom::Ints(1, 10)),
            col("ps_availqty", Dom::Ints(1, 9999)),
            col("ps_supplycost", Dom::Money(1, 1000)),
            col("ps_comment", Dom::Free(COMMENT)),
        ],
    },
];

/// A many-to-one foreign key: every `child` row has at most one `parent`.
struct Edge {
    child: usize,
    child_col: &'static str,
    parent: usize,
    parent_col: &'static str,
}

const EDGES: &[Edge] = &[
    Edge {
        child: ORDERS,
        child_col: "o_custkey",
        parent: CUSTOMER,
        parent_col: "c_custkey",
    },
    Edge {
        child: LINEITEM,
        child_col: "l_orderkey",
        parent: ORDERS,
        parent_col: "o_orderkey",
    },
    Edge {
        child: LINEITEM,
        child_col: "l_partkey",
        parent: PART,
        parent_col: "p_partkey",
    },
    Edge {
        child: LINEITEM,
        child_col: "l_suppkey",
        parent: SUPPLIER,
        parent_col: "s_suppkey",
    },
    Edge {
        child: PARTSUPP,
        child_col: "ps_partkey",
        parent: PART,
        parent_col: "p_partkey",
    },
    Edge {
        child: PARTSUPP,
        child_col: "ps_suppkey",
        parent: SUPPLIER,
        parent_col: "s_suppkey",
    },
    Edge {
        child: CUSTOMER,
        child_col: "c_nationkey",
        parent: NATION,
        parent_col: "n_nationkey",
    },
    Edge {
        child: SUPPLIER,
        child_col: "s_nationkey",
        parent: NATION,
        parent_col: "n_nationkey",
    },
    Edge {
        child: NATION,
        child_col: "n_regionkey",
        parent: REGION,
        parent_col: "r_regionkey",
    },
];

/// Comparable expressions of two tables (`@` stands for a table alias), for
/// EXISTS / IN probes and scalar subqueries. Usable in both directions.
struct Link {
    a: usize,
    a_expr: &'static str,
    b: usize,
    b_expr: &'static str,
    /// Involves a masked column, so it may be NULL (no NOT IN over it).
    masked: bool,
}

const fn link(a: usize, a_expr: &'static str, b: usize, b_expr: &'static str) -> Link {
    Link {
        a,
        a_expr,
        b,
        b_expr,
        masked: false,
    }
}

const fn mlink(a: usize, a_expr: &'static str, b: usize, b_expr: &'static str) -> Link {
    Link {
        a,
        a_expr,
        b,
        b_expr,
        masked: true,
    }
}

const LINKS: &[Link] = &[
    link(ORDERS, "@.o_custkey", CUSTOMER, "@.c_custkey"),
    link(LINEITEM, "@.l_orderkey", ORDERS, "@.o_orderkey"),
    link(LINEITEM, "@.l_partkey", PART, "@.p_partkey"),
    link(LINEITEM, "@.l_suppkey", SUPPLIER, "@.s_suppkey"),
    link(PARTSUPP, "@.ps_partkey", PART, "@.p_partkey"),
    link(PARTSUPP, "@.ps_suppkey", SUPPLIER, "@.s_suppkey"),
    link(CUSTOMER, "@.c_nationkey", NATION, "@.n_nationkey"),
    link(SUPPLIER, "@.s_nationkey", NATION, "@.n_nationkey"),
    link(NATION, "@.n_regionkey", REGION, "@.r_regionkey"),
    link(CUSTOMER, "@.c_nationkey", SUPPLIER, "@.s_nationkey"),
    link(CUSTOMER, "@.c_nationkey", CUSTOMER, "@.c_nationkey"),
    link(ORDERS, "@.o_custkey", ORDERS, "@.o_custkey"),
    link(LINEITEM, "@.l_partkey", PARTSUPP, "@.ps_partkey"),
    mlink(CUSTOMER, "@.c_phone", CUSTOMER, "@.c_phone"),
    mlink(CUSTOMER, "@.c_name", CUSTOMER, "@.c_name"),
    mlink(CUSTOMER, "@.c_phone", SUPPLIER, "@.s_phone"),
    mlink(CUSTOMER, "substr(@.c_phone, 1, 2)", SUPPLIER, "substr(@.s_phone, 1, 2)"),
    mlink(CUSTOMER, "right(@.c_phone, 4)", SUPPLIER, "right(@.s_phone, 4)"),
    mlink(CUSTOMER, "substr(@.c_name, 10)", SUPPLIER, "substr(@.s_name, 10)"),
    mlink(CUSTOMER, "substr(@.c_name, 10)", ORDERS, "substr(@.o_clerk, 7)"),
    mlink(
        CUSTOMER,
        "substr(@.c_phone, 1, 2)",
        NATION,
        "CAST(@.n_nationkey + 10 AS VARCHAR)",
    ),
    mlink(ORDERS, "@.o_clerk", ORDERS, "@.o_clerk"),
    mlink(SUPPLIER, "@.s_phone", SUPPLIER, "@.s_phone"),
];

/// A join of two table instances outside the foreign keys (`@1`, `@2` stand for
/// their aliases), with a bound on the left side (or both) that keeps the join
/// small when masking makes every key equal (`'***'`).
struct Pair {
    left: usize,
    right: usize,
    on: &'static str,
    bound: &'static str,
}

const PAIRS: &[Pair] = &[
    Pair {
        left: CUSTOMER,
        right: CUSTOMER,
        on: "@1.c_nationkey = @2.c_nationkey AND @1.c_custkey < @2.c_custkey",
        bound: "@1.c_custkey <= 100",
    },
    Pair {
        left: CUSTOMER,
        right: CUSTOMER,
        on: "@1.c_phone = @2.c_phone AND @1.c_custkey <> @2.c_custkey",
        bound: "@1.c_custkey <= 60",
    },
    Pair {
        left: CUSTOMER,
        right: CUSTOMER,
        on: "@1.c_name = @2.c_name",
        bound: "@1.c_custkey <= 60 AND @2.c_custkey <= 60",
    },
    Pair {
        left: CUSTOMER,
        right: CUSTOMER,
        on: "substr(@1.c_phone, 1, 2) = substr(@2.c_phone, 1, 2) AND @1.c_custkey < @2.c_custkey",
        bound: "@1.c_custkey <= 60",
    },
    Pair {
        left: CUSTOMER,
        right: SUPPLIER,
        on: "@1.c_phone = @2.s_phone",
        bound: "@1.c_custkey <= 100",
    },
    Pair {
        left: CUSTOMER,
        right: SUPPLIER,
        on: "substr(@1.c_phone, 1, 2) = substr(@2.s_phone, 1, 2)",
        bound: "@1.c_custkey <= 100",
    },
    Pair {
        left: CUSTOMER,
        right: SUPPLIER,
        on: "@1.c_nationkey = @2.s_nationkey AND @1.c_acctbal > @2.s_acctbal",
        bound: "@1.c_custkey <= 100",
    },
    Pair {
        left: CUSTOMER,
        right: ORDERS,
        on: "substr(@1.c_name, 10) = substr(@2.o_clerk, 7)",
        bound: "@1.c_custkey <= 20 AND @2.o_orderkey <= 200",
    },
    Pair {
        left: ORDERS,
        right: ORDERS,
        on: "@1.o_custkey = @2.o_custkey AND @1.o_orderkey < @2.o_orderkey",
        bound: "@1.o_custkey <= 30",
    },
    Pair {
        left: ORDERS,
        right: ORDERS,
        on: "@1.o_clerk = @2.o_clerk AND @1.o_orderkey < @2.o_orderkey",
        bound: "@1.o_orderkey <= 100 AND @2.o_orderkey <= 300",
    },
    Pair {
        left: SUPPLIER,
        right: SUPPLIER,
        on: "@1.s_phone < @2.s_phone",
        bound: "",
    },
    Pair {
        left: SUPPLIER,
        right: SUPPLIER,
        on: "@1.s_acctbal < @2.s_acctbal",
        bound: "",
    },
    Pair {
        left: PART,
        right: PART,
        on: "@1.p_brand = @2.p_brand AND @1.p_partkey < @2.p_partkey",
        bound: "@1.p_partkey <= 100",
    },
    Pair {
        left: NATION,
        right: NATION,
        on: "@1.n_regionkey = @2.n_regionkey AND @1.n_nationkey < @2.n_nationkey",
        bound: "",
    },
];

/// Expressions that fail on some rows (`@` stands for the table alias):
/// divisions whose divisor reaches zero, casts of text that masking turns
/// into hex digests or `***`.
const ERRORS: &[(usize, &str)] = &[
    (CUSTOMER, "1 / (@.c_nationkey - 7)"),
    (CUSTOMER, "CAST(substr(@.c_phone, 1, 2) AS INT)"),
    (CUSTOMER, "CAST(right(@.c_phone, 4) AS INT)"),
    (CUSTOMER, "@.c_acctbal / (@.c_custkey % 10)"),
    (CUSTOMER, "CAST(substr(@.c_name, 10) AS INT)"),
    (NATION, "1 / (@.n_nationkey - 7)"),
    (NATION, "100 / (@.n_regionkey - 2)"),
    (REGION, "10 / (@.r_regionkey - 3)"),
    (ORDERS, "CAST(substr(@.o_clerk, 7) AS INT)"),
    (ORDERS, "@.o_totalprice / (@.o_custkey % 7)"),
    (ORDERS, "100 / @.o_shippriority"),
    (LINEITEM, "@.l_extendedprice / (@.l_linenumber - 7)"),
    (LINEITEM, "@.l_quantity / (@.l_discount * 100 - 5)"),
    (SUPPLIER, "CAST(substr(@.s_phone, 1, 2) AS INT)"),
    (SUPPLIER, "@.s_acctbal / (@.s_nationkey - 3)"),
    (SUPPLIER, "1 / (@.s_suppkey - 5)"),
    (PART, "@.p_retailprice / (@.p_size - 25)"),
    (PARTSUPP, "@.ps_supplycost / (@.ps_availqty % 100)"),
];

/// Predicates across columns of one table (`@` stands for the alias), mostly
/// consistency checks that masking breaks.
const EXTRA_PREDICATES: &[(usize, &str)] = &[
    (
        CUSTOMER,
        "substr(@.c_phone, 1, 2) = CAST(@.c_nationkey + 10 AS VARCHAR)",
    ),
    (CUSTOMER, "@.c_name LIKE '%' || CAST(@.c_custkey AS VARCHAR)"),
    (
        SUPPLIER,
        "substr(@.s_phone, 1, 2) = CAST(@.s_nationkey + 10 AS VARCHAR)",
    ),
    (SUPPLIER, "@.s_acctbal > 0 AND @.s_phone LIKE '1%'"),
    (ORDERS, "@.o_clerk LIKE '%' || CAST(@.o_orderkey % 10 AS VARCHAR)"),
    (LINEITEM, "@.l_commitdate < @.l_receiptdate"),
    (LINEITEM, "@.l_shipdate > @.l_commitdate"),
];

/// One generated query and the grammar features it uses.
#[derive(Clone, Debug)]
pub struct Query {
    pub sql: String,
    pub features: Vec<&'static str>,
}

/// A deterministic generator of read-only queries (SplitMix64 underneath).
pub struct SqlGen {
    state: u64,
    features: Vec<&'static str>,
    /// Tables replaced by a CTE of the same shape in the current query.
    views: Vec<(usize, String)>,
    aliases: u32,
    /// Whether the current query may still take an expression that may fail.
    error_prone: bool,
}

/// A table instance in a FROM clause.
struct Rel {
    t: usize,
    a: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Plain,
    Grouped,
    Global,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sub {
    No,
    Exists,
    In,
    ScalarWhere,
    ScalarItem,
}

/// One side of a [`Link`] seen from a given outer table.
#[derive(Clone, Copy)]
struct Probe {
    outer: &'static str,
    inner_t: usize,
    inner: &'static str,
    masked: bool,
}

struct Select {
    distinct: bool,
    items: Vec<String>,
    from: String,
    wheres: Vec<String>,
    group_by: Vec<String>,
    having: Option<String>,
    tail: String,
}

impl Select {
    fn new(from: String) -> Self {
        Self {
            distinct: false,
            items: Vec::new(),
            from,
            wheres: Vec::new(),
            group_by: Vec::new(),
            having: None,
            tail: String::new(),
        }
    }

    /// Adds an output expression unless it is already there.
    fn item(&mut self, expr: String) {
        if !self.items.contains(&expr) {
            self.items.push(expr);
        }
    }

    fn render(&self) -> String {
        let items: Vec<String> = self
            .items
            .iter()
            .enumerate()
            .map(|(i, e)| format!("{e} AS c{}", i + 1))
            .collect();
        let distinct = if self.distinct { "DISTINCT " } else { "" };
        let mut sql = format!("SELECT {distinct}{} FROM {}", items.join(", "), self.from);
        if !self.wheres.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&self.wheres.join(" AND "));
        }
        if !self.group_by.is_empty() {
            sql.push_str(" GROUP BY ");
            sql.push_str(&self.group_by.join(", "));
        }
        if let Some(having) = &self.having {
            sql.push_str(" HAVING ");
            sql.push_str(having);
        }
        sql.push_str(&self.tail);
        sql
    }
}

fn fill(template: &str, alias: &str) -> String {
    template.replace('@', alias)
}

fn probes(t: usize) -> Vec<Probe> {
    let mut out = Vec::new();
    for l in LINKS {
        if l.a == t {
            out.push(Probe {
                outer: l.a_expr,
                inner_t: l.b,
                inner: l.b_expr,
                masked: l.masked,
            });
        }
        if l.b == t && (l.a != l.b || l.a_expr != l.b_expr) {
            out.push(Probe {
                outer: l.b_expr,
                inner_t: l.a,
                inner: l.a_expr,
                masked: l.masked,
            });
        }
    }
    out
}

fn decimal(hundredths: i64) -> String {
    format!("CAST('{}.{:02}' AS DECIMAL(15,2))", hundredths / 100, hundredths % 100)
}

impl SqlGen {
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed,
            features: Vec::new(),
            views: Vec::new(),
            aliases: 0,
            error_prone: false,
        }
    }

    /// One random read-only query over the mesh's tables.
    pub fn query(&mut self) -> Query {
        self.features.clear();
        self.views.clear();
        self.aliases = 0;
        self.error_prone = self.chance(ERROR_PRONE_PCT);
        let start = self.below(TABLES.len());
        // Plain, joined, grouped, global aggregate, EXISTS, IN, scalar subquery,
        // window, CTE, set operation, pair join, derived table.
        let sql = match self.weighted(&[10, 9, 14, 5, 8, 8, 6, 8, 7, 8, 6, 3]) {
            0 => self.select(start, 0, Shape::Plain, Sub::No),
            1 => {
                let joins = 1 + self.below(2);
                self.select(start, joins, Shape::Plain, Sub::No)
            }
            2 => {
                let joins = self.below(3);
                self.select(start, joins, Shape::Grouped, Sub::No)
            }
            3 => {
                let joins = self.below(3);
                self.select(start, joins, Shape::Global, Sub::No)
            }
            4 => self.with_subquery(start, Sub::Exists),
            5 => self.with_subquery(start, Sub::In),
            6 => {
                let sub = if self.chance(70) {
                    Sub::ScalarWhere
                } else {
                    Sub::ScalarItem
                };
                self.with_subquery(start, sub)
            }
            7 => self.window(start),
            8 => self.cte(start),
            9 => self.set_operation(start),
            10 => self.pair_join(),
            _ => self.derived(start),
        };
        let mut features = std::mem::take(&mut self.features);
        features.sort_unstable();
        features.dedup();
        Query { sql, features }
    }

    // --- randomness ---

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    /// Uniform in the middle half of `lo..=hi`.
    fn mid(&mut self, lo: i64, hi: i64) -> i64 {
        let span = hi - lo;
        self.between(lo + span / 4, hi - span / 4)
    }

    fn chance(&mut self, pct: u64) -> bool {
        self.next_u64() % 100 < pct
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut roll = self.below(total as usize) as u32;
        for (i, &w) in weights.iter().enumerate() {
            if roll < w {
                return i;
            }
            roll -= w;
        }
        weights.len() - 1
    }

    // --- bookkeeping ---

    fn feature(&mut self, name: &'static str) {
        self.features.push(name);
    }

    fn rel(&mut self, t: usize) -> Rel {
        self.aliases += 1;
        Rel {
            t,
            a: format!("{}{}", TABLES[t].alias, self.aliases),
        }
    }

    fn table_name(&self, t: usize) -> String {
        self.views
            .iter()
            .find(|(v, _)| *v == t)
            .map_or_else(|| TABLES[t].name.to_string(), |(_, name)| name.clone())
    }

    fn is_view(&self, t: usize) -> bool {
        self.views.iter().any(|(v, _)| *v == t)
    }

    /// A column of `t`, masked ones favoured.
    fn column(&mut self, t: usize) -> &'static Col {
        let cols = TABLES[t].cols;
        if self.chance(40) {
            let masked: Vec<&'static Col> = cols.iter().filter(|c| c.masked).collect();
            if !masked.is_empty() {
                return self.pick(&masked);
            }
        }
        &cols[self.below(cols.len())]
    }

    fn column_of(&mut self, t: usize, want: impl Fn(Ty) -> bool) -> Option<&'static Col> {
        let cols: Vec<&'static Col> = TABLES[t].cols.iter().filter(|c| want(c.dom.ty())).collect();
        if cols.is_empty() { None } else { Some(self.pick(&cols)) }
    }

    // --- FROM clauses ---

    /// `start` and up to `joins` tables along foreign keys. Joins to a parent
    /// never multiply rows; a join to a child is taken only from the table
    /// that sets the grain, so the result stays within the largest table.
    fn join_tree(&mut self, start: usize, joins: usize, up_only: bool) -> (String, Vec<Rel>) {
        let first = self.rel(start);
        let mut sql = format!("{} {}", self.table_name(start), first.a);
        let mut scope = vec![first];
        let mut grain = start;
        for _ in 0..joins {
            let has = |t: usize| scope.iter().any(|r| r.t == t);
            let candidates: Vec<(&'static Edge, bool)> = EDGES
                .iter()
                .filter_map(|e| {
                    if has(e.child) && !has(e.parent) {
                        Some((e, true))
                    } else if !up_only && e.parent == grain && !has(e.child) {
                        Some((e, false))
                    } else {
                        None
                    }
                })
                .collect();
            if candidates.is_empty() {
                break;
            }
            let (edge, up) = self.pick(&candidates);
            let (old_t, old_col, new_t, new_col) = if up {
                (edge.child, edge.child_col, edge.parent, edge.parent_col)
            } else {
                (edge.parent, edge.parent_col, edge.child, edge.child_col)
            };
            let Some(old) = scope.iter().find(|r| r.t == old_t).map(|r| r.a.clone()) else {
                break;
            };
            let new = self.rel(new_t);
            let left = self.chance(20);
            let mut on = format!("{old}.{old_col} = {}.{new_col}", new.a);
            if left {
                self.feature("left_join");
                if self.chance(50) {
                    on = format!("{on} AND {}", self.pred(&new));
                }
            }
            let kind = if left { "LEFT JOIN" } else { "JOIN" };
            sql = format!("{sql} {kind} {} {} ON {on}", self.table_name(new_t), new.a);
            if !up {
                grain = new_t;
            }
            scope.push(new);
            self.feature("join");
        }
        (sql, scope)
    }

    // --- predicates ---

    fn filters(&mut self, scope: &[Rel], n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let i = self.below(scope.len());
                self.pred(&scope[i])
            })
            .collect()
    }

    fn pred(&mut self, rel: &Rel) -> String {
        let p = self.atom(rel);
        match self.below(100) {
            0..=11 => {
                let q = self.atom(rel);
                format!("({p} OR {q})")
            }
            12..=17 => format!("NOT ({p})"),
            _ => p,
        }
    }

    fn atom(&mut self, rel: &Rel) -> String {
        let extra: Vec<&str> = EXTRA_PREDICATES
            .iter()
            .filter(|(t, _)| *t == rel.t)
            .map(|(_, p)| *p)
            .collect();
        if !extra.is_empty() && self.chance(10) {
            return fill(self.pick(&extra), &rel.a);
        }
        let col = self.column(rel.t);
        if col.masked {
            self.feature("masked_predicate");
        }
        let x = format!("{}.{}", rel.a, col.name);
        match col.dom {
            Dom::Ints(lo, hi) => self.int_pred(&x, lo, hi),
            Dom::Money(lo, hi) => match self.below(4) {
                0 => format!("{x} > {}", self.mid(lo, hi)),
                1 => format!("{x} <= {}", self.mid(lo, hi)),
                2 => {
                    let a = self.mid(lo, hi);
                    let w = (hi - lo) / self.between(3, 6);
                    format!("{x} BETWEEN {a} AND {}", a + w)
                }
                _ if col.masked => format!("{x} IS NOT NULL"),
                _ => format!("{x} * 2 > {}", self.mid(lo, hi)),
            },
            Dom::Hundredths(max) => {
                let k = self.between(0, max);
                match self.below(3) {
                    0 => format!("{x} = {}", decimal(k)),
                    1 => format!("{x} <= {}", decimal(k)),
                    _ => format!("{x} BETWEEN {} AND {}", decimal(k), decimal((k + 3).min(max))),
                }
            }
            Dom::Words(words) => match self.below(6) {
                0 | 1 => format!("{x} = '{}'", self.pick(words)),
                2 => format!("{x} IN ('{}', '{}')", self.pick(words), self.pick(words)),
                3 => format!("{x} <> '{}'", self.pick(words)),
                4 => {
                    let w = self.pick(words);
                    let n = 1 + self.below(w.len().min(3));
                    format!("{x} LIKE '{}%'", &w[..n])
                }
                _ => format!("lower({x}) = '{}'", self.pick(words).to_lowercase()),
            },
            Dom::Numbered(prefix, n) => self.numbered_pred(&x, prefix, n),
            Dom::Phone => self.phone_pred(&x),
            Dom::Dates => self.date_pred(&x),
            Dom::Free(fragments) => match self.below(5) {
                0 | 1 => format!("{x} LIKE '%{}%'", self.pick(fragments)),
                2 => format!("{x} NOT LIKE '%{}%'", self.pick(fragments)),
                3 => format!("length({x}) > {}", self.between(12, 30)),
                _ => {
                    self.feature("regex");
                    format!("{x} ~ '{}'", self.pick(fragments))
                }
            },
        }
    }

    fn int_pred(&mut self, x: &str, lo: i64, hi: i64) -> String {
        let span = hi - lo;
        if span == 0 {
            return format!("{x} = {lo}");
        }
        match self.below(6) {
            0 => {
                let w = (span * self.between(20, 60) / 100).max(1);
                let a = self.between(lo, hi - w);
                format!("{x} BETWEEN {a} AND {}", a + w)
            }
            1 => format!("{x} < {}", self.mid(lo, hi)),
            2 => format!("{x} >= {}", self.mid(lo, hi)),
            3 => {
                let n = 3 + self.below(4);
                let values: Vec<String> = (0..n).map(|_| self.between(lo, hi).to_string()).collect();
                format!("{x} IN ({})", values.join(", "))
            }
            4 => {
                let k = self.between(2, 5);
                format!("{x} % {k} = {}", self.between(0, k - 1))
            }
            _ if span <= 30 => format!("{x} = {}", self.between(lo, hi)),
            _ => format!("{x} <> {}", self.between(lo, hi)),
        }
    }

    fn numbered_pred(&mut self, x: &str, prefix: &str, n: i64) -> String {
        match self.below(9) {
            0 => format!("{x} = '{prefix}{:09}'", self.between(1, n)),
            1 => format!("{x} LIKE '{prefix}0000000%'"),
            2 => format!("{x} < '{prefix}{:09}'", self.mid(1, n)),
            3 => {
                self.feature("regex");
                format!("regexp_like({x}, '[13579]$')")
            }
            4 => {
                self.feature("regex");
                format!("{x} ~ '#0+[1-4]'")
            }
            5 => format!("right({x}, 1) IN ('1', '2', '3')"),
            6 => format!("upper({x}) LIKE '{}%'", prefix.to_uppercase()),
            7 => format!("length({x}) = {}", prefix.len() + 9),
            _ => format!("substr({x}, {}) < '{:09}'", prefix.len() + 1, self.mid(1, n)),
        }
    }

    fn phone_pred(&mut self, x: &str) -> String {
        match self.below(11) {
            0 => format!("{x} LIKE '{}%'", self.between(1, 3)),
            1 => format!("substr({x}, 1, 2) = '{}'", self.between(10, 34)),
            2 => {
                let a = self.between(10, 34);
                let b = self.between(10, 34);
                let c = self.between(10, 34);
                format!("substr({x}, 1, 2) IN ('{a}', '{b}', '{c}')")
            }
            3 => {
                self.feature("regex");
                format!("{x} ~ '^1[0-4]-'")
            }
            4 => {
                self.feature("regex");
                format!("regexp_like({x}, '^(2[0-9]|3[0-4])-[0-9]')")
            }
            5 => format!("right({x}, 1) IN ('1', '3', '5', '7', '9')"),
            6 => format!("length({x}) = 15"),
            7 => format!("{x} IS NOT NULL"),
            8 => format!("{x} > '2'"),
            9 => {
                self.feature("regex");
                format!("regexp_match({x}, '^[0-9][0-9]-[0-9]') IS NOT NULL")
            }
            _ => format!("{x} LIKE '%-{}%'", self.between(1, 9)),
        }
    }

    fn date(&mut self) -> (i64, i64) {
        (self.between(1993, 1997), self.between(1, 12))
    }

    fn date_pred(&mut self, x: &str) -> String {
        let (y, m) = self.date();
        let d = self.between(1, 28);
        let lit = format!("DATE '{y}-{m:02}-{d:02}'");
        match self.below(6) {
            0 => format!("{x} >= {lit}"),
            1 => format!("{x} < {lit}"),
            2 | 3 => {
                let end = y * 12 + m - 1 + self.between(3, 24);
                format!("{x} BETWEEN {lit} AND DATE '{}-{:02}-{d:02}'", end / 12, end % 12 + 1)
            }
            4 => format!("EXTRACT(YEAR FROM {x}) = {}", self.between(1992, 1998)),
            _ => {
                let a = self.between(1, 12);
                let b = self.between(1, 12);
                let c = self.between(1, 12);
                format!("EXTRACT(MONTH FROM {x}) IN ({a}, {b}, {c})")
            }
        }
    }

    // --- expressions ---

    /// An expression that may fail on some rows of `rel`; spends the query's
    /// allowance.
    fn error_expr(&mut self, rel: &Rel) -> String {
        self.error_prone = false;
        self.feature("error_prone");
        let exprs: Vec<&str> = ERRORS.iter().filter(|(t, _)| *t == rel.t).map(|(_, e)| *e).collect();
        fill(self.pick(&exprs), &rel.a)
    }

    fn scalar(&mut self, rel: &Rel) -> String {
        if self.chance(10) {
            self.feature("case");
            let p = self.atom(rel);
            let q = self.atom(rel);
            return format!("CASE WHEN {p} THEN 'a' WHEN {q} THEN 'b' ELSE 'c' END");
        }
        let col = self.column(rel.t);
        let x = format!("{}.{}", rel.a, col.name);
        if self.chance(45) {
            return x;
        }
        match col.dom.ty() {
            Ty::Int => match self.below(5) {
                0 => format!("{x} + {}", self.between(1, 100)),
                1 => format!("{x} * {}", self.between(2, 9)),
                2 => format!("{x} % {}", self.between(2, 9)),
                3 => format!("abs({x} - {})", self.between(1, 50)),
                _ => format!("CAST({x} AS VARCHAR)"),
            },
            Ty::Dec => match self.below(3) {
                0 => format!("{x} * 2"),
                1 => format!("{x} - {}", self.between(1, 500)),
                _ => format!("CAST({x} AS BIGINT)"),
            },
            Ty::Text => match self.below(8) {
                0 => format!("upper({x})"),
                1 => format!("lower({x})"),
                2 => format!("substr({x}, 1, {})", self.between(2, 8)),
                3 => format!("length({x})"),
                4 => format!("right({x}, 4)"),
                5 => match self.column_of(rel.t, |t| t == Ty::Text) {
                    Some(other) => format!("{x} || '/' || {}.{}", rel.a, other.name),
                    None => x,
                },
                6 => format!("COALESCE({x}, '(none)')"),
                _ => {
                    self.feature("regex");
                    format!("regexp_replace({x}, '[0-9]', '#', 'g')")
                }
            },
            Ty::Date => match self.below(3) {
                0 => format!("EXTRACT(YEAR FROM {x})"),
                1 => format!("EXTRACT(MONTH FROM {x})"),
                _ => format!("CAST({x} AS VARCHAR)"),
            },
        }
    }

    /// An expression with few distinct values, for GROUP BY and PARTITION BY.
    fn group_key(&mut self, rel: &Rel) -> String {
        let col = self.column(rel.t);
        let x = format!("{}.{}", rel.a, col.name);
        match col.dom {
            Dom::Ints(lo, hi) if hi - lo > 50 => format!("{x} % {}", self.between(3, 7)),
            Dom::Ints(..) | Dom::Words(_) | Dom::Hundredths(_) => x,
            Dom::Phone => match self.below(3) {
                0 => x,
                1 => format!("substr({x}, 1, 2)"),
                _ => format!("right({x}, 1)"),
            },
            Dom::Numbered(..) => match self.below(3) {
                0 => x,
                1 => format!("right({x}, 1)"),
                _ => format!("substr({x}, 1, 12)"),
            },
            Dom::Dates => format!("EXTRACT(YEAR FROM {x})"),
            Dom::Money(lo, hi) => format!("CAST({x} AS BIGINT) / {}", (hi - lo) / 5),
            Dom::Free(_) => format!("length({x})"),
        }
    }

    fn sum(&mut self, rel: &Rel) -> String {
        match self.column_of(rel.t, |t| t == Ty::Int || t == Ty::Dec) {
            Some(c) => format!("SUM({}.{})", rel.a, c.name),
            None => "COUNT(*)".to_string(),
        }
    }

    fn aggregate(&mut self, scope: &[Rel]) -> String {
        let rel = &scope[self.below(scope.len())];
        let x = format!("{}.{}", rel.a, self.column(rel.t).name);
        match self.weighted(&[4, 2, 3, 4, 4, 2, 2, 1]) {
            0 => "COUNT(*)".to_string(),
            1 => format!("COUNT({x})"),
            2 => format!("COUNT(DISTINCT {x})"),
            3 => self.sum(rel),
            4 => format!("{}({x})", if self.chance(50) { "MIN" } else { "MAX" }),
            5 => match self.column_of(rel.t, |t| t == Ty::Dec) {
                Some(c) => format!("ROUND(AVG({}.{}), 2)", rel.a, c.name),
                None => self.sum(rel),
            },
            6 => {
                self.feature("case");
                format!("SUM(CASE WHEN {} THEN 1 ELSE 0 END)", self.atom(rel))
            }
            _ if rel.t == LINEITEM => format!("SUM({0}.l_extendedprice * (1 - {0}.l_discount))", rel.a),
            _ => "COUNT(*)".to_string(),
        }
    }

    fn having(&mut self, scope: &[Rel]) -> String {
        let rel = &scope[self.below(scope.len())];
        let x = format!("{}.{}", rel.a, self.column(rel.t).name);
        match self.below(3) {
            0 => format!("COUNT(*) > {}", self.below(3)),
            1 => format!("COUNT(DISTINCT {x}) > 1"),
            _ => format!("MIN({x}) <> MAX({x})"),
        }
    }

    fn order_limit(&mut self, columns: usize) -> String {
        self.feature("order_limit");
        let keys: Vec<String> = (1..=columns)
            .map(|i| {
                if self.chance(30) {
                    format!("c{i} DESC")
                } else {
                    format!("c{i}")
                }
            })
            .collect();
        format!(" ORDER BY {} LIMIT {}", keys.join(", "), self.between(1, 20))
    }

    // --- subqueries ---

    fn exists(&mut self, outer: &Rel) -> String {
        self.feature("subquery");
        self.feature("exists");
        let probe = self.pick(&probes(outer.t));
        let inner = self.rel(probe.inner_t);
        let mut conds = vec![format!(
            "{} = {}",
            fill(probe.inner, &inner.a),
            fill(probe.outer, &outer.a)
        )];
        if probe.inner_t == outer.t
            && probe.inner == probe.outer
            && let [key] = TABLES[outer.t].key
        {
            conds.push(format!("{}.{key} <> {}.{key}", inner.a, outer.a));
        }
        let n = self.below(3);
        conds.extend(self.filters(std::slice::from_ref(&inner), n));
        let not = if self.chance(30) { "NOT " } else { "" };
        format!(
            "{not}EXISTS (SELECT 1 FROM {} {} WHERE {})",
            self.table_name(inner.t),
            inner.a,
            conds.join(" AND ")
        )
    }

    fn in_subquery(&mut self, outer: &Rel) -> String {
        self.feature("subquery");
        self.feature("in_subquery");
        let probe = self.pick(&probes(outer.t));
        let joins = usize::from(self.chance(30));
        let (from, scope) = self.join_tree(probe.inner_t, joins, true);
        let n = 1 + self.below(2);
        let preds = self.filters(&scope, n);
        let not = if !probe.masked && self.chance(25) { "NOT " } else { "" };
        format!(
            "{} {not}IN (SELECT {} FROM {from} WHERE {})",
            fill(probe.outer, &outer.a),
            fill(probe.inner, &scope[0].a),
            preds.join(" AND ")
        )
    }

    fn scalar_where(&mut self, outer: &Rel) -> String {
        self.feature("subquery");
        self.feature("scalar_subquery");
        if self.chance(50)
            && let Some(c) = self.column_of(outer.t, |t| t != Ty::Text)
        {
            let inner = self.rel(outer.t);
            let agg = if c.dom.ty() == Ty::Dec {
                self.pick(&["AVG", "MIN", "MAX"])
            } else {
                self.pick(&["MIN", "MAX"])
            };
            let op = self.pick(&[">", "<", ">=", "<="]);
            let n = 1 + self.below(2);
            let preds = self.filters(std::slice::from_ref(&inner), n);
            return format!(
                "{}.{c} {op} (SELECT {agg}({}.{c}) FROM {} {} WHERE {})",
                outer.a,
                inner.a,
                self.table_name(outer.t),
                inner.a,
                preds.join(" AND "),
                c = c.name
            );
        }
        let probe = self.pick(&probes(outer.t));
        let inner = self.rel(probe.inner_t);
        let n = 1 + self.below(2);
        let preds = self.filters(std::slice::from_ref(&inner), n);
        let (agg, op) = self.pick(&[("MIN", ">="), ("MAX", "<="), ("MIN", "="), ("MAX", "<>")]);
        format!(
            "{} {op} (SELECT {agg}({}) FROM {} {} WHERE {})",
            fill(probe.outer, &outer.a),
            fill(probe.inner, &inner.a),
            self.table_name(inner.t),
            inner.a,
            preds.join(" AND ")
        )
    }

    fn scalar_item(&mut self) -> String {
        self.feature("subquery");
        self.feature("scalar_subquery");
        let t = self.below(TABLES.len());
        let inner = self.rel(t);
        let agg = if self.chance(50) {
            "COUNT(*)".to_string()
        } else {
            let c = self.column(t);
            format!("{}({}.{})", self.pick(&["MIN", "MAX"]), inner.a, c.name)
        };
        let n = 1 + self.below(2);
        let preds = self.filters(std::slice::from_ref(&inner), n);
        format!(
            "(SELECT {agg} FROM {} {} WHERE {})",
            self.table_name(t),
            inner.a,
            preds.join(" AND ")
        )
    }

    // --- query shapes ---

    fn with_subquery(&mut self, start: usize, sub: Sub) -> String {
        let shape = if sub == Sub::ScalarItem {
            Shape::Plain
        } else {
            self.pick(&[Shape::Plain, Shape::Plain, Shape::Grouped, Shape::Global])
        };
        let joins = usize::from(self.chance(25));
        self.select(start, joins, shape, sub)
    }

    fn select(&mut self, start: usize, joins: usize, shape: Shape, sub: Sub) -> String {
        let (from, scope) = self.join_tree(start, joins, false);
        let mut q = Select::new(from);
        let limit = shape != Shape::Global && self.chance(10);
        if self.error_prone && !limit && scope.len() == 1 && sub == Sub::No && !self.is_view(start) && self.chance(40) {
            // The failing predicate stands alone: every plan evaluates it on
            // every visible row.
            let e = self.error_expr(&scope[0]);
            let p = match self.below(3) {
                0 => format!("{e} > 0"),
                1 => format!("{e} <> 3"),
                _ => format!("{e} BETWEEN 10 AND 20"),
            };
            q.wheres.push(p);
        } else {
            let n = if shape == Shape::Plain || scope.len() > 2 {
                1 + self.below(2)
            } else {
                self.below(3)
            };
            q.wheres = self.filters(&scope, n);
            let outer = &scope[self.below(scope.len())];
            match sub {
                Sub::Exists => q.wheres.push(self.exists(outer)),
                Sub::In => q.wheres.push(self.in_subquery(outer)),
                Sub::ScalarWhere => q.wheres.push(self.scalar_where(outer)),
                Sub::ScalarItem | Sub::No => {}
            }
        }
        match shape {
            Shape::Plain => {
                let n = 2 + self.below(3);
                for _ in 0..n {
                    let i = self.below(scope.len());
                    let e = self.scalar(&scope[i]);
                    q.item(e);
                }
                if self.chance(12) {
                    self.feature("distinct");
                    q.distinct = true;
                }
                if sub == Sub::ScalarItem {
                    let e = self.scalar_item();
                    q.item(e);
                }
                if self.error_prone && !limit {
                    let i = self.below(scope.len());
                    let e = self.error_expr(&scope[i]);
                    q.item(e);
                }
            }
            Shape::Grouped | Shape::Global => {
                self.feature("aggregate");
                if shape == Shape::Grouped {
                    self.feature("group_by");
                    let keys = 1 + self.below(2);
                    for _ in 0..keys {
                        let i = self.below(scope.len());
                        let k = self.group_key(&scope[i]);
                        if !q.group_by.contains(&k) {
                            q.group_by.push(k.clone());
                            q.item(k);
                        }
                    }
                    if self.chance(30) {
                        self.feature("having");
                        q.having = Some(self.having(&scope));
                    }
                }
                let aggs = 1 + self.below(3);
                for _ in 0..aggs {
                    let a = self.aggregate(&scope);
                    q.item(a);
                }
                if self.error_prone && !limit {
                    let i = self.below(scope.len());
                    let e = self.error_expr(&scope[i]);
                    let f = self.pick(&["SUM", "MIN", "MAX"]);
                    q.item(format!("{f}({e})"));
                }
            }
        }
        if limit {
            q.tail = self.order_limit(q.items.len());
        }
        q.render()
    }

    fn window(&mut self, start: usize) -> String {
        self.feature("window");
        let joins = self.below(2);
        let (from, scope) = self.join_tree(start, joins, true);
        let mut q = Select::new(from);
        let top_n = self.chance(25);
        let n = 1 + self.below(3);
        for _ in 0..n {
            let i = self.below(scope.len());
            let e = self.scalar(&scope[i]);
            q.item(e);
        }
        let ranked = q.items.len() + 1;
        let w = self.window_fn(&scope, top_n);
        q.item(w);
        if self.chance(40) {
            let w = self.window_fn(&scope, false);
            q.item(w);
        }
        let big = matches!(start, ORDERS | LINEITEM | PARTSUPP);
        let n = if big { 1 + self.below(2) } else { self.below(2) };
        q.wheres = self.filters(&scope, n);
        if top_n {
            self.feature("derived_table");
            let cols: Vec<String> = (1..=q.items.len()).map(|i| format!("w.c{i} AS c{i}")).collect();
            let k = self.between(1, 3);
            return format!(
                "SELECT {} FROM ({}) w WHERE w.c{ranked} <= {k}",
                cols.join(", "),
                q.render()
            );
        }
        if self.error_prone {
            let i = self.below(scope.len());
            let e = self.error_expr(&scope[i]);
            q.item(e);
        }
        q.render()
    }

    /// A window function over `scope`, whose first table's key stays unique
    /// (only parents are joined), so ordering by it is total.
    fn window_fn(&mut self, scope: &[Rel], ranking: bool) -> String {
        let base = &scope[0];
        let key: Vec<String> = TABLES[base.t].key.iter().map(|k| format!("{}.{k}", base.a)).collect();
        let key = key.join(", ");
        let partition = if self.chance(80) {
            let i = self.below(scope.len());
            format!("PARTITION BY {} ", self.group_key(&scope[i]))
        } else {
            String::new()
        };
        let rel = &scope[self.below(scope.len())];
        let v = format!("{}.{}", rel.a, self.column(rel.t).name);
        let kind = if ranking { self.below(3) } else { self.below(9) };
        match kind {
            0 => format!("ROW_NUMBER() OVER ({partition}ORDER BY {v} DESC, {key})"),
            1 => format!("RANK() OVER ({partition}ORDER BY {v})"),
            2 => format!("DENSE_RANK() OVER ({partition}ORDER BY {v} DESC)"),
            3 => format!("COUNT(*) OVER ({})", partition.trim_end()),
            4 => format!("{} OVER ({})", self.sum(rel), partition.trim_end()),
            5 => format!("{}({v}) OVER ({})", self.pick(&["MIN", "MAX"]), partition.trim_end()),
            6 => format!("{} OVER ({partition}ORDER BY {key})", self.sum(base)),
            7 => {
                let f = self.pick(&["LAG({v})", "LEAD({v})", "LAG({v}, 2)", "LEAD({v}, 2)"]);
                format!("{} OVER ({partition}ORDER BY {key})", f.replace("{v}", &v))
            }
            _ => {
                let by = format!("{}.{}", base.a, self.column(base.t).name);
                format!("FIRST_VALUE({v}) OVER ({partition}ORDER BY {by}, {key})")
            }
        }
    }

    fn cte(&mut self, start: usize) -> String {
        self.feature("cte");
        if self.chance(55) {
            // Tables replaced by filtered CTEs of the same shape.
            let mut tables = vec![start];
            if self.chance(40) {
                let neighbours: Vec<usize> = EDGES
                    .iter()
                    .filter_map(|e| {
                        if e.child == start {
                            Some(e.parent)
                        } else if e.parent == start {
                            Some(e.child)
                        } else {
                            None
                        }
                    })
                    .collect();
                tables.push(self.pick(&neighbours));
            }
            let mut defs = Vec::new();
            for t in tables {
                let r = self.rel(t);
                let n = 1 + self.below(2);
                let preds = self.filters(std::slice::from_ref(&r), n);
                let name = format!("v_{}", TABLES[t].alias);
                defs.push(format!(
                    "{name} AS (SELECT * FROM {} {} WHERE {})",
                    TABLES[t].name,
                    r.a,
                    preds.join(" AND ")
                ));
                self.views.push((t, name));
            }
            let body = match self.below(6) {
                0 => self.select(start, 0, Shape::Plain, Sub::No),
                1 => self.select(start, 1, Shape::Plain, Sub::No),
                2 => self.select(start, 1, Shape::Grouped, Sub::No),
                3 => self.select(start, 0, Shape::Global, Sub::In),
                4 => self.window(start),
                _ => self.select(start, 0, Shape::Plain, Sub::Exists),
            };
            return format!("WITH {} {body}", defs.join(", "));
        }
        // A per-key aggregate of a child table, joined back to its parent.
        self.feature("aggregate");
        self.feature("group_by");
        self.feature("join");
        let edge = &EDGES[self.below(EDGES.len())];
        let r = self.rel(edge.child);
        let key = format!("{}.{}", r.a, edge.child_col);
        let a1 = self.aggregate(std::slice::from_ref(&r));
        let n = self.below(2);
        let preds = self.filters(std::slice::from_ref(&r), n);
        let filter = if preds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", preds.join(" AND "))
        };
        let def = format!(
            "t_agg AS (SELECT {key} AS k, COUNT(*) AS n, {a1} AS a1 FROM {} {}{filter} GROUP BY {key})",
            TABLES[edge.child].name, r.a
        );
        let p = self.rel(edge.parent);
        let from = if self.chance(30) {
            self.feature("left_join");
            format!(
                "{} {} LEFT JOIN t_agg ON t_agg.k = {}.{}",
                TABLES[edge.parent].name, p.a, p.a, edge.parent_col
            )
        } else {
            format!(
                "t_agg JOIN {} {} ON {}.{} = t_agg.k",
                TABLES[edge.parent].name, p.a, p.a, edge.parent_col
            )
        };
        let mut q = Select::new(from);
        let n = 1 + self.below(2);
        for _ in 0..n {
            let e = self.scalar(&p);
            q.item(e);
        }
        q.item("t_agg.n".to_string());
        q.item("t_agg.a1".to_string());
        let n = self.below(2);
        q.wheres = self.filters(std::slice::from_ref(&p), n);
        if self.chance(30) {
            q.wheres.push("t_agg.n > 1".to_string());
        }
        if self.error_prone {
            let e = self.error_expr(&p);
            q.item(e);
        }
        format!("WITH {def} {}", q.render())
    }

    fn set_operation(&mut self, start: usize) -> String {
        let n = 1 + self.weighted(&[4, 4, 2]);
        let types: Vec<Ty> = (0..n)
            .map(|_| [Ty::Text, Ty::Int, Ty::Dec, Ty::Date][self.weighted(&[5, 4, 1, 1])])
            .collect();
        let fits: Vec<usize> = (0..TABLES.len())
            .filter(|&t| types.iter().all(|&ty| TABLES[t].cols.iter().any(|c| c.dom.ty() == ty)))
            .collect();
        let first = if fits.contains(&start) { start } else { self.pick(&fits) };
        let branches = if self.chance(20) { 3 } else { 2 };
        let mut sql = self.branch(first, &types);
        for _ in 1..branches {
            let (op, feature) = [
                ("UNION", "union"),
                ("UNION ALL", "union"),
                ("INTERSECT", "intersect"),
                ("EXCEPT", "except"),
            ][self.weighted(&[3, 3, 2, 2])];
            self.feature(feature);
            let t = if self.chance(65) { first } else { self.pick(&fits) };
            let branch = self.branch(t, &types);
            sql = format!("{sql} {op} {branch}");
        }
        if self.chance(30) {
            self.feature("derived_table");
            self.feature("aggregate");
            self.feature("group_by");
            return format!("SELECT u.c1 AS c1, COUNT(*) AS c2 FROM ({sql}) u GROUP BY u.c1");
        }
        if self.chance(15) {
            sql.push_str(&self.order_limit(n));
        }
        sql
    }

    /// One SELECT of a set operation, its columns cast to common types.
    fn branch(&mut self, t: usize, types: &[Ty]) -> String {
        let r = self.rel(t);
        let mut items = Vec::new();
        for (i, &ty) in types.iter().enumerate() {
            let Some(c) = self.column_of(t, |c| c == ty) else {
                continue;
            };
            let x = format!("{}.{}", r.a, c.name);
            let e = match ty {
                Ty::Text => {
                    let x = match self.below(5) {
                        0 => format!("upper({x})"),
                        1 => format!("substr({x}, 1, 5)"),
                        2 => format!("right({x}, 4)"),
                        _ => x,
                    };
                    format!("CAST({x} AS VARCHAR)")
                }
                Ty::Int if self.chance(30) => format!("CAST({x} % 10 AS BIGINT)"),
                Ty::Int => format!("CAST({x} AS BIGINT)"),
                Ty::Dec => format!("CAST({x} AS DECIMAL(15,2))"),
                Ty::Date => x,
            };
            items.push(format!("{e} AS c{}", i + 1));
        }
        let n = 1 + self.below(2);
        let preds = self.filters(std::slice::from_ref(&r), n);
        format!(
            "SELECT {} FROM {} {} WHERE {}",
            items.join(", "),
            self.table_name(t),
            r.a,
            preds.join(" AND ")
        )
    }

    fn pair_join(&mut self) -> String {
        let pair = &PAIRS[self.below(PAIRS.len())];
        let l = self.rel(pair.left);
        let r = self.rel(pair.right);
        self.feature("join");
        self.feature(if pair.left == pair.right {
            "self_join"
        } else {
            "masked_join"
        });
        let fill2 = |s: &str| s.replace("@1", &l.a).replace("@2", &r.a);
        let from = format!(
            "{} {} JOIN {} {} ON {}",
            self.table_name(pair.left),
            l.a,
            self.table_name(pair.right),
            r.a,
            fill2(pair.on)
        );
        let mut q = Select::new(from);
        if !pair.bound.is_empty() {
            q.wheres.push(fill2(pair.bound));
        }
        let scope = [l, r];
        let n = self.below(2);
        q.wheres.extend(self.filters(&scope, n));
        if self.chance(60) {
            self.feature("aggregate");
            if self.chance(60) {
                self.feature("group_by");
                let k = self.group_key(&scope[0]);
                q.group_by.push(k.clone());
                q.item(k);
            }
            q.item("COUNT(*)".to_string());
            let a = self.aggregate(&scope[1..]);
            q.item(a);
            if self.error_prone {
                let i = self.below(2);
                let e = self.error_expr(&scope[i]);
                q.item(format!("MAX({e})"));
            }
        } else {
            let n = 2 + self.below(3);
            for _ in 0..n {
                let i = self.below(2);
                let e = self.scalar(&scope[i]);
                q.item(e);
            }
            if self.chance(15) {
                q.tail = self.order_limit(q.items.len());
            } else if self.error_prone {
                let i = self.below(2);
                let e = self.error_expr(&scope[i]);
                q.item(e);
            }
        }
        q.render()
    }

    fn derived(&mut self, start: usize) -> String {
        self.feature("derived_table");
        self.feature("aggregate");
        self.feature("group_by");
        let joins = self.below(2);
        let (from, scope) = self.join_tree(start, joins, false);
        let mut inner = Select::new(from);
        let i = self.below(scope.len());
        let k = self.group_key(&scope[i]);
        inner.item(k);
        let i = self.below(scope.len());
        let v = self.scalar(&scope[i]);
        inner.item(v);
        let n = 1 + self.below(2);
        inner.wheres = self.filters(&scope, n);
        let value = if inner.items.len() > 1 { "d.c2" } else { "d.c1" };
        let having = if self.chance(30) {
            self.feature("having");
            " HAVING COUNT(*) > 1"
        } else {
            ""
        };
        format!(
            "SELECT d.c1 AS c1, COUNT(*) AS c2, COUNT(DISTINCT {value}) AS c3, MAX({value}) AS c4 FROM ({}) d GROUP BY d.c1{having}",
            inner.render()
        )
    }
}
