// The PostgreSQL JDBC driver against Tessera's PostgreSQL-wire endpoint.
// Run as a single source file:
//   java -cp postgresql.jar PgJdbc.java HOST PORT API_KEY [ROOT_CA_PEM [CUSTOMERS_TABLES]]
// With ROOT_CA_PEM, over TLS (sslmode=verify-full against that CA);
// CUSTOMERS_TABLES (comma-separated, default "nation") are the tables of the
// customers domain the key's principal must see listed, and no others.
// Expects customers.nation (TPC-H nation); exits 1 naming the failed check.

import java.sql.*;
import java.util.*;

public class PgJdbc {
    static int failed = 0;

    static void check(String name, Object got, Object expected) {
        boolean ok = Objects.equals(got, expected);
        if (!ok) failed++;
        System.out.println((ok ? "ok   " : "FAIL ") + name + ": " + got + (ok ? "" : " (expected " + expected + ")"));
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/tessera";
        Properties props = new Properties();
        props.setProperty("user", "analyst");
        props.setProperty("password", args[2]);
        if (args.length > 3) {
            props.setProperty("sslmode", "verify-full");
            props.setProperty("sslrootcert", args[3]);
        }
        try (Connection conn = DriverManager.getConnection(url, props)) {
            try (Statement st = conn.createStatement();
                 ResultSet rs = st.executeQuery("SELECT count(*) FROM customers.nation")) {
                rs.next();
                check("jdbc statement", rs.getLong(1), 25L);
            }
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT n_name FROM customers.nation WHERE n_nationkey = ?")) {
                for (int i = 0; i < 6; i++) { // past prepareThreshold: a server-side prepared statement
                    ps.setInt(1, 7);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        if (i == 5) check("jdbc prepared statement", rs.getString(1), "GERMANY");
                    }
                }
            }
            DatabaseMetaData meta = conn.getMetaData();
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = meta.getTables(null, "customers", "%", null)) {
                while (rs.next()) tables.add(rs.getString("TABLE_NAME"));
            }
            List<String> expected = List.of((args.length > 4 ? args[4] : "nation").split(","));
            check("jdbc metadata tables", tables, expected);
            try (Statement st = conn.createStatement()) {
                st.executeQuery("SELECT 1/0");
                check("jdbc error", "no error", "22012");
            } catch (SQLException e) {
                check("jdbc error", e.getSQLState(), "22012");
            }
            try (Statement st = conn.createStatement();
                 ResultSet rs = st.executeQuery("SELECT n_name FROM customers.nation WHERE n_nationkey = 0")) {
                rs.next();
                check("jdbc after an error", rs.getString(1), "ALGERIA");
            }
        }
        if (failed > 0) {
            System.err.println(failed + " JDBC checks failed");
            System.exit(1);
        }
        System.out.println("all JDBC checks passed");
    }
}
