//! `tessera demo` and the CLI, driven as their users would: the demo's printed
//! lines run as printed (psql, curl, Flight SQL), and a domain team and an
//! analyst work from a terminal.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::BIN;

/// A running `tessera demo` and what it printed.
pub(super) struct Demo {
    child: Child,
    pub(super) url: String,
    /// Persona -> its lines (`psql`, `curl`, `flight`, `cli`) as printed.
    personas: BTreeMap<String, BTreeMap<String, String>>,
    output: Vec<String>,
}

impl Demo {
    fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    pub(super) fn start_with(data_dir: &Path, flags: &[&str]) -> Self {
        let (stderr, log) = super::logs::process("demo");
        let mut child = Command::new(BIN)
            .args(["demo", "--scale", "0.01", "--data-dir"])
            .arg(data_dir)
            .args(flags)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--pg-listen",
                "127.0.0.1:0",
                "--flight-listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("tessera demo starts");
        let rx = super::stdout_lines(&mut child, log);
        let mut output = Vec::new();
        let mut personas: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut current: Option<String> = None;
        let mut url = None;
        // Generation, registration and checks at SF 0.01 take seconds; a cold dev build is slow.
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(300)) {
            if let Some(rest) = line.strip_prefix("Tessera catalog listening on ") {
                url = Some(rest.trim().to_string());
            }
            if let Some((name, _)) = line.split_once(": ")
                && !line.starts_with(' ')
                && name.chars().all(|c| c.is_ascii_lowercase())
            {
                current = Some(name.to_string());
            }
            if let (Some(persona), Some(rest)) = (&current, line.strip_prefix("  "))
                && let Some((label, value)) = rest.split_once(':')
                && ["psql", "curl", "flight", "cli"].contains(&label)
            {
                personas
                    .entry(persona.clone())
                    .or_default()
                    .insert(label.to_string(), value.trim().to_string());
            }
            let done = line.starts_with("Stop with Ctrl-C");
            output.push(line);
            if done {
                let demo = Self {
                    child,
                    url: url.expect("a listening line"),
                    personas,
                    output,
                };
                for persona in demo.personas.keys() {
                    super::logs::secret(&demo.key(persona));
                }
                return demo;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the demo did not come up: {output:#?}");
    }

    fn line(&self, persona: &str, label: &str) -> &str {
        self.personas
            .get(persona)
            .and_then(|p| p.get(label))
            .unwrap_or_else(|| panic!("no {label} line for {persona} in {:#?}", self.output))
    }

    /// The key in a persona's `cli` line.
    pub(super) fn key(&self, persona: &str) -> String {
        self.line(persona, "cli")
            .split_whitespace()
            .last()
            .expect("a key")
            .to_string()
    }

    pub(super) fn stop(mut self) {
        super::terminate(&mut self.child);
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a printed line through the shell, feeding `stdin`.
fn shell(line: &str, stdin: &str) -> (i32, String, String) {
    let mut child = Command::new("sh")
        .args(["-c", line])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("written");
    let out = child.wait_with_output().expect("finishes");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// `count(*)` of sales.lineitem over Flight SQL at `uri`, for the analytics purpose.
async fn lineitems_over_flight(uri: &str, key: &str, ca_pem: Option<&[u8]>) -> i64 {
    let client = tessera_sdk::flight::FlightClient::connect_trusting(uri, key, ca_pem)
        .await
        .expect("connects")
        .with_purpose("analytics");
    let batches = client
        .query("SELECT count(*) AS n FROM sales.lineitem")
        .await
        .expect("answers");
    arrow::array::cast::as_primitive_array::<arrow::datatypes::Int64Type>(batches[0].column(0)).value(0)
}

const CUSTOMER_NAME: &str = "SELECT c_name FROM customers.customer ORDER BY c_custkey LIMIT 1;\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_mesh_answers_every_printed_line_and_survives_a_rerun() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = Demo::start(dir.path());
    assert_eq!(
        demo.personas.keys().map(String::as_str).collect::<Vec<_>>(),
        ["admin", "ana", "cora", "fred", "nia", "sal", "sue"]
    );

    // psql, as printed: the analyst sees PII hashed, the investigator in clear.
    let (code, out, err) = shell(
        demo.line("ana", "psql"),
        &format!("\\pset format unaligned\n{CUSTOMER_NAME}"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(is_sha256_hex), "ana sees c_name hashed: {out}");
    let (code, out, err) = shell(
        demo.line("fred", "psql"),
        &format!("\\pset format unaligned\n{CUSTOMER_NAME}"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Customer#000000001"), "fred sees names in clear: {out}");
    // The customers' owner sees her product unmasked; nia sees it in the
    // catalog but has no grant: she is told so, and how to ask.
    let (code, out, _) = shell(demo.line("cora", "psql"), CUSTOMER_NAME);
    assert_eq!(code, 0);
    assert!(out.contains("Customer#000000001"), "{out}");
    let (_, _, err) = shell(demo.line("nia", "psql"), CUSTOMER_NAME);
    assert!(
        err.contains("is not queryable for you") && err.contains("tessera access request customers.customer"),
        "{err}"
    );

    // curl, as printed: the sample query, through the row filter for ana.
    let (code, out, err) = shell(demo.line("ana", "curl"), "");
    assert_eq!(code, 0, "{err}");
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let nations: Vec<&str> = answer["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("rows in {answer}"))
        .iter()
        .filter_map(|r| r[0].as_str().or_else(|| r["n_name"].as_str()))
        .collect();
    assert!(nations.contains(&"FRANCE") && nations.contains(&"JAPAN"), "{answer}");
    assert!(!nations.contains(&"BRAZIL"), "ana sees EUROPE and ASIA only: {answer}");
    let (code, out, _) = shell(demo.line("fred", "curl"), "");
    assert_eq!(code, 0);
    assert!(out.contains("BRAZIL"), "fred sees every region: {out}");

    // Flight SQL, at the printed URI with the printed headers.
    let flight = demo.line("ana", "flight");
    let uri = flight.split_whitespace().next().expect("uri");
    assert!(flight.contains("tessera-purpose: analytics"), "{flight}");
    assert_eq!(lineitems_over_flight(uri, &demo.key("ana"), None).await, 60_175);

    // The SDK's HTTP query client, as the same personas.
    let sdk = tessera_sdk::Client::new(demo.url.clone(), &demo.key("ana")).expect("client");
    let answer = sdk
        .query_arrow(CUSTOMER_NAME.trim_end_matches(";\n"), Some("analytics"))
        .await
        .expect("answers");
    assert_eq!(answer.num_rows(), 1);
    assert!(answer.query_id.is_some(), "the query id of the audit record");
    let names = arrow::array::cast::as_string_array(answer.batches[0].column(0));
    assert!(is_sha256_hex(names.value(0)), "hashed for ana over HTTP too");
    let rows = sdk
        .query("SELECT count(*) AS n FROM customers.region", Some("analytics"))
        .await
        .expect("answers");
    assert_eq!(rows.rows[0]["n"], 5);
    let nia = tessera_sdk::Client::new(demo.url.clone(), &demo.key("nia")).expect("client");
    let refused = nia
        .query("SELECT count(*) FROM customers.region", Some("analytics"))
        .await
        .expect_err("no grant");
    assert_eq!(refused.status().map(|s| s.as_u16()), Some(403), "{refused}");
    assert_eq!(refused.problem().and_then(|p| p.sqlstate.as_deref()), Some("42501"));

    // The keys are the user's only.
    let keys_file = dir.path().join("demo/personas.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&keys_file), 0o600);
        // So are the catalog's database (key hashes, the mask key) and the directories.
        assert_eq!(mode(&dir.path().join("catalog.db")), 0o600);
        assert_eq!(mode(&dir.path().join("demo")), 0o700);
        assert_eq!(mode(dir.path()), 0o700, "the data directory");
    }
    let first_ana = demo.key("ana");
    let url = demo.url.clone();
    demo.stop();

    // Again: the same mesh and the same keys, nothing regenerated.
    let again = Demo::start(dir.path());
    assert_eq!(again.key("ana"), first_ana);
    assert!(
        again.url == url || !again.url.is_empty(),
        "the catalog answers again at {}",
        again.url
    );
    let (code, out, _) = shell(
        again.line("ana", "psql"),
        &format!("\\pset format unaligned\n{CUSTOMER_NAME}"),
    );
    assert_eq!(code, 0);
    assert!(out.lines().any(is_sha256_hex), "{out}");
    again.stop();

    // A key the file holds no longer works (here: lost): a fresh one is issued
    // and the persona's old demo key revoked.
    let text = std::fs::read_to_string(&keys_file).expect("keys");
    std::fs::write(&keys_file, text.replace(&first_ana, "tsk_000000000000_lost")).expect("written");
    let third = Demo::start(dir.path());
    let new_ana = third.key("ana");
    assert_ne!(new_ana, first_ana);
    let reply = reqwest::Client::new()
        .get(format!("{}/api/v1/whoami", third.url))
        .bearer_auth(&first_ana)
        .send()
        .await
        .expect("sent");
    assert_eq!(reply.status(), 401, "the old key is revoked");
    let reply = reqwest::Client::new()
        .get(format!("{}/api/v1/whoami", third.url))
        .bearer_auth(&new_ana)
        .send()
        .await
        .expect("sent");
    assert_eq!(reply.status(), 200);
    third.stop();
}

/// `tessera` with a login file of its own.
struct Cli {
    config: PathBuf,
    /// The working directory the commands run in.
    cwd: PathBuf,
}

impl Cli {
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(&self.cwd)
            .env("TESSERA_CLI_CONFIG", &self.config)
            .env_remove("TESSERA_API_KEY")
            .env_remove("TESSERA_CATALOG_URL")
            .output()
            .expect("runs");
        super::logs::record("cli", &out);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs and expects exit 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "tessera {args:?}: {out}{err}");
        out
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("tessera {args:?}: {e}: {out}"))
    }
}

const RETURNS_V1: &str = r"apiVersion: v3.1.0
kind: DataContract
id: sales-returns
name: Returns
version: 1.0.0
status: active
domain: sales
dataProduct: returns
description:
  purpose: Goods sent back by customers, one row per return.
schema:
  - name: returns
    physicalType: table
    logicalType: object
    properties:
      - name: r_returnkey
        logicalType: integer
        physicalType: bigint
        required: true
        unique: true
        primaryKey: true
        primaryKeyPosition: 1
        quality:
          - metric: duplicateValues
            mustBe: 0
      - name: r_custkey
        logicalType: integer
        physicalType: bigint
        required: true
      - name: r_reason
        logicalType: string
        physicalType: string
        required: true
      - name: r_amount
        logicalType: number
        physicalType: double
        required: true
    quality:
      - metric: rowCount
        mustBeGreaterThan: 0
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_team_and_an_analyst_work_from_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = Demo::start(&dir.path().join("platform"));
    let work = dir.path();
    // The CLI runs from a directory of its own, away from the platform's data.
    let elsewhere = work.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    let cli = |name: &str| Cli {
        config: work.join(format!("{name}.toml")),
        cwd: elsewhere.clone(),
    };
    let (sal, nia, cora) = (cli("sal"), cli("nia"), cli("cora"));
    let url = demo.url.as_str();

    // Not signed in yet: a clear error, a hint, and the exit code for it.
    let (code, _, err) = sal.run(&["product", "list", "--endpoint", url]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("hint: run `tessera login"), "{err}");

    let out = sal.ok(&["login", "--endpoint", url, "--key", &demo.key("sal")]);
    assert!(out.contains("signed in as sal"), "{out}");
    nia.ok(&["login", "--endpoint", url, "--key", &demo.key("nia")]);
    cora.ok(&["login", "--endpoint", url, "--key", &demo.key("cora")]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&sal.config).expect("login file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the login file holds a key");
    }

    // The domain team: a product, its contract linted and published, its data.
    // A relative location lies under the domain's storage root, whatever
    // directory the CLI runs in.
    sal.ok(&[
        "product",
        "create",
        "sales.returns",
        "--title",
        "Returns",
        "--location",
        "returns",
        "--input",
        "sales.orders",
    ]);
    let location = work.join("platform/lake/sales/returns");
    let location = location.to_str().expect("utf-8");
    let shown = sal.json(&["product", "show", "sales.returns"]);
    assert_eq!(
        shown["output_ports"][0]["location"].as_str(),
        Some(format!("file://{location}").as_str()),
        "stored absolute: {shown}"
    );
    let contract = work.join("returns.odcs.yaml");
    std::fs::write(&contract, RETURNS_V1).expect("written");
    let contract = contract.to_str().expect("utf-8");
    sal.ok(&["contract", "lint", contract]);
    sal.ok(&["contract", "publish", contract, "--product", "sales.returns"]);

    let good = work.join("returns.csv");
    std::fs::write(
        &good,
        "r_returnkey,r_custkey,r_reason,r_amount\n1,1,damaged,10.5\n2,2,late,99.0\n3,3,wrong size,5.25\n",
    )
    .expect("written");
    let published = sal.json(&["publish", good.to_str().expect("utf-8"), "--product", "sales.returns"]);
    assert_eq!(published["rows"], 3, "{published}");
    assert!(
        Path::new(location).join("_delta_log").is_dir(),
        "published into the product's table"
    );
    assert!(
        !elsewhere.join("returns").exists(),
        "no stray table in the working directory"
    );
    let run = sal.json(&["quality", "run", "--product", "sales.returns"]);
    assert_eq!(
        run["table_version"], 0,
        "the quality run measured the real table: {run}"
    );
    sal.ok(&["product", "status", "sales.returns", "published"]);

    // Data that breaks the contract: nothing is committed, and it says why.
    // Key 2 is a duplicate only together with the rows already there.
    let bad = work.join("bad.csv");
    std::fs::write(
        &bad,
        "r_returnkey,r_custkey,r_reason,r_amount\n2,4,late again,1.0\n5,5,missing amount,\n",
    )
    .expect("written");
    let (code, out, err) = sal.run(&["publish", bad.to_str().expect("utf-8"), "--product", "sales.returns"]);
    assert_eq!(code, 1, "a refused publish exits 1: {out}{err}");
    let said = format!("{out}{err}");
    assert!(said.contains("r_amount"), "names the null in a required column: {said}");
    assert!(said.contains("duplicate"), "names the duplicate key: {said}");
    let commits = std::fs::read_dir(Path::new(location).join("_delta_log"))
        .expect("log")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .count();
    assert_eq!(commits, 1, "the refused publish made no Delta commit");

    // A breaking change within the major is refused, with what breaks.
    let breaking = work.join("returns-1.1.odcs.yaml");
    let without_reason = RETURNS_V1.replace("version: 1.0.0", "version: 1.1.0").replace(
        "      - name: r_reason\n        logicalType: string\n        physicalType: string\n        required: true\n",
        "",
    );
    std::fs::write(&breaking, without_reason).expect("written");
    let (code, out, err) = sal.run(&[
        "contract",
        "publish",
        breaking.to_str().expect("utf-8"),
        "--product",
        "sales.returns",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("r_reason"), "says what breaks: {err}");

    // The analyst: sees the product in the catalog, not in SQL, until approved.
    let listed = nia.json(&["product", "list", "--domain", "sales"]);
    assert!(
        listed.as_array().expect("list").iter().any(|p| p["name"] == "returns"),
        "{listed}"
    );
    let query = "SELECT r.r_returnkey, c.c_name, c.c_nationkey FROM sales.returns r \
                 JOIN customers.customer c ON c.c_custkey = r.r_custkey ORDER BY r.r_returnkey";
    let (code, _, err) = nia.run(&["sql", "--purpose", "analytics", query]);
    assert_ne!(code, 0);
    assert!(
        err.contains("is not queryable for you") && err.contains("tessera access request"),
        "{err}"
    );
    let mut ids = Vec::new();
    for product in ["sales.returns", "customers.customer"] {
        let request = nia.json(&[
            "access",
            "request",
            product,
            "--purpose",
            "analytics",
            "--justification",
            "returns by customer for the quarterly review",
        ]);
        assert_eq!(request["status"], "pending", "{request}");
        ids.push(request["id"].as_i64().expect("id").to_string());
    }
    let pending = sal.json(&["access", "list", "--status", "pending"]);
    let pending = pending.as_array().expect("list");
    assert!(
        pending
            .iter()
            .any(|r| r["id"].as_i64().map(|i| i.to_string()).as_ref() == Some(&ids[0])),
        "{pending:?}"
    );
    // Only the product's owners decide: to others the request does not exist.
    let (code, _, err) = sal.run(&["access", "approve", &ids[1]]);
    assert_eq!(code, 4, "sal does not own customers.customer: {err}");
    sal.ok(&["access", "approve", &ids[0], "--note", "ok for the review"]);
    cora.ok(&["access", "approve", &ids[1]]);

    // Approved: the cross-domain query answers, through the analyst's policies
    // (PII hashed, customers of her region EUROPE only).
    let mut rows = Value::Null;
    for _ in 0..100 {
        let (code, out, _) = nia.run(&["sql", "--purpose", "analytics", query, "--output", "json"]);
        if code == 0 {
            rows = serde_json::from_str(&out).expect("json");
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let rows = rows
        .as_array()
        .unwrap_or_else(|| panic!("the approved query answers: {rows}"));
    for row in rows {
        assert!(is_sha256_hex(row["c_name"].as_str().unwrap_or_default()), "{row}");
        let nation = row["c_nationkey"].as_i64().expect("nation");
        assert!([6, 7, 19, 22, 23].contains(&nation), "EUROPE only: {row}");
    }
    let table = nia.ok(&[
        "sql",
        "--purpose",
        "analytics",
        "SELECT count(*) AS n FROM sales.returns",
    ]);
    assert!(table.contains("| n ") && table.contains("| 3 "), "{table}");
    let csv = nia.ok(&[
        "sql",
        "--purpose",
        "analytics",
        "SELECT r_returnkey FROM sales.returns ORDER BY 1",
        "--output",
        "csv",
    ]);
    assert_eq!(csv, "r_returnkey\n1\n2\n3\n");

    // The gateway follows the catalog: `status` says so (as an admin).
    let admin = cli("admin");
    admin.ok(&["login", "--endpoint", url, "--key", &demo.key("admin")]);
    let status = admin.json(&["status"]);
    assert_eq!(status["gateways"][0]["state"], "SYNCED", "{status}");
    // Generating completions builds every subcommand, which in this debug
    // binary runs clap's consistency checks (unique names, valid defaults...):
    // a clash fails here.
    let completions = admin.ok(&["completions", "bash"]);
    assert!(completions.contains("tessera"), "a bash completion script");
    demo.stop();
}

/// `tessera demo --tls`: every listener answers over TLS only, and the
/// printed lines verify the demo's own CA (psql `verify-full`, curl
/// `--cacert`, Flight SQL `grpc+tls://`); cleartext is refused on every
/// listener before any credential is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_over_tls_verifies_every_printed_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = Demo::start_with(dir.path(), &["--tls"]);
    assert!(demo.url.starts_with("https://127.0.0.1:"), "{}", demo.url);
    let ca = dir.path().join("tls/ca.pem");
    let ca_pem = std::fs::read(&ca).expect("the demo's CA");

    // psql with sslmode=verify-full, as printed.
    let psql = demo.line("ana", "psql");
    assert!(
        psql.contains("sslmode=verify-full") && psql.contains("sslrootcert="),
        "{psql}"
    );
    let (code, out, err) = shell(psql, &format!("\\pset format unaligned\n{CUSTOMER_NAME}"));
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(is_sha256_hex), "ana sees c_name hashed: {out}");
    // The same connection in cleartext is refused before the password is asked for.
    let cleartext = psql.replace("sslmode=verify-full", "sslmode=disable");
    let (code, _, err) = shell(&cleartext, CUSTOMER_NAME);
    assert_ne!(code, 0);
    assert!(err.contains("accepts only TLS"), "{err}");
    // A CA the client does not trust: the handshake fails.
    let other = dir.path().join("other-ca.pem");
    let other_ca = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("a certificate");
    std::fs::write(&other, other_ca.cert.pem()).expect("written");
    let (code, _, err) = shell(
        &psql.replace(&ca.display().to_string(), &other.display().to_string()),
        CUSTOMER_NAME,
    );
    assert_ne!(code, 0);
    assert!(err.contains("certificate verify failed"), "{err}");

    // curl --cacert, as printed; plain http is told to use https.
    let (code, out, err) = shell(demo.line("ana", "curl"), "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("FRANCE"), "{out}");
    let plain = demo.url.replace("https://", "http://");
    let (code, out, _) = shell(&format!("curl -s {plain}/api/v1/version"), "");
    assert_eq!(code, 0);
    assert!(out.contains("tls-required"), "{out}");

    // Flight SQL at the printed grpc+tls:// URI, verifying the CA.
    let flight = demo.line("ana", "flight");
    let uri = flight.split_whitespace().next().expect("uri");
    assert!(uri.starts_with("grpc+tls://"), "{flight}");
    assert_eq!(
        lineitems_over_flight(uri, &demo.key("ana"), Some(&ca_pem)).await,
        60_175
    );
    // Apache Arrow's ADBC driver too (from PyPI, installed by scripts/test).
    if let Ok(python) = std::env::var("TESSERA_TEST_PYTHON") {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/flight_tls.py");
        super::client_passes(
            "ADBC Flight SQL over TLS",
            Command::new(python).arg(script).arg(uri).arg(demo.key("ana")).arg(&ca),
        );
    }
    // In cleartext the gRPC client gets nothing.
    let cleartext = uri.replace("grpc+tls://", "grpc://");
    let refused = match tessera_sdk::flight::FlightClient::connect(&cleartext, &demo.key("ana")).await {
        Ok(client) => client.query("SELECT 1").await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a cleartext Flight SQL query was answered");

    // The CLI, as printed (login with --cacert), then a query.
    let (code, out, err) = shell(
        &format!(
            "TESSERA_CLI_CONFIG={home}/cli.toml {BIN} login --endpoint {url} --cacert {ca} --key {key} && TESSERA_CLI_CONFIG={home}/cli.toml TESSERA_CA_FILE={ca} {BIN} sql --purpose analytics 'SELECT count(*) AS n FROM customers.region'",
            home = dir.path().display(),
            url = demo.url,
            ca = ca.display(),
            key = demo.key("ana"),
        ),
        "",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains('5'), "{out}");

    let port = psql
        .split_whitespace()
        .find_map(|part| part.strip_prefix("port="))
        .expect("a port")
        .to_string();
    // JDBC with sslmode=verify-full; cora owns the customers domain and
    // sees its three tables.
    let cora = demo.key("cora");
    super::jdbc_checks(&[
        "127.0.0.1".as_ref(),
        port.as_ref(),
        cora.as_ref(),
        ca.as_os_str(),
        "customer,nation,region".as_ref(),
    ]);
    // psycopg with verify-full holds a connection while the certificate is
    // replaced and the process gets SIGHUP: the held connection goes on,
    // new ones get the new certificate.
    if let Ok(python) = std::env::var("TESSERA_TEST_PYTHON") {
        use std::io::BufRead;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/pg_tls.py");
        let renewed = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("a certificate");
        let new_ca = dir.path().join("renewed.pem");
        std::fs::write(&new_ca, renewed.cert.pem()).expect("written");
        let mut client = Command::new(python)
            .arg(script)
            .args(["127.0.0.1", &port, &demo.key("cora")])
            .arg(&ca)
            .arg(&new_ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python runs");
        let mut lines = std::io::BufReader::new(client.stdout.take().expect("stdout")).lines();
        let ready = lines.next().and_then(Result::ok).unwrap_or_default();
        assert_eq!(ready, "ready", "{:?}", client.wait_with_output());
        std::fs::write(dir.path().join("tls/server.pem"), renewed.cert.pem()).expect("written");
        std::fs::write(dir.path().join("tls/server.key"), renewed.signing_key.serialize_pem()).expect("written");
        let hangup = Command::new("kill")
            .args(["-HUP", &demo.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(hangup.success());
        client.stdin.take().expect("stdin").write_all(b"go\n").expect("written");
        let answer = lines.next().and_then(Result::ok).unwrap_or_default();
        let out = client.wait_with_output().expect("finishes");
        let answer: Value = serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("{e}: {answer} {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(
            answer,
            serde_json::json!({"before": 25, "held": 25, "fresh": 25, "tls": true, "old_ca_refused": true})
        );
    }
    demo.stop();
}
