//! `tessera sql "SELECT ..."`: a query through the gateway's HTTP endpoint, as
//! the signed-in principal, printed as an aligned table, CSV, JSON or Arrow.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use arrow::array::RecordBatch;

use crate::cli::{Global, Output};

#[derive(Debug, clap::Args)]
pub struct SqlArgs {
    /// The query (`-` reads it from stdin).
    pub sql: String,
    /// The purpose the query is for (it counts if your principal may declare it).
    #[arg(long, env = "TESSERA_PURPOSE")]
    pub purpose: Option<String>,
}

pub async fn run(global: &Global, args: SqlArgs) -> anyhow::Result<ExitCode> {
    let sql = if args.sql == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read the query from stdin")?
    } else {
        args.sql
    };
    let answer = global.client()?.query_arrow(&sql, args.purpose.as_deref()).await?;
    let batches = &answer.batches;
    let mut out = std::io::stdout().lock();
    match global.output {
        Output::Text => {
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            if batches.is_empty() {
                let empty = RecordBatch::new_empty(answer.schema.clone());
                writeln!(out, "{}", arrow::util::pretty::pretty_format_batches(&[empty])?)?;
            } else {
                writeln!(out, "{}", arrow::util::pretty::pretty_format_batches(batches)?)?;
            }
            writeln!(out, "({rows} row{})", if rows == 1 { "" } else { "s" })?;
        }
        Output::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
            if batches.is_empty() {
                writer.write(&RecordBatch::new_empty(answer.schema.clone()))?;
            }
            for b in batches {
                writer.write(b)?;
            }
        }
        Output::Json => {
            let mut writer = arrow::json::ArrayWriter::new(&mut out);
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            writer.write_batches(&refs)?;
            writer.finish()?;
            writeln!(out)?;
        }
        Output::Arrow => {
            let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut out, &answer.schema)?;
            for b in batches {
                writer.write(b)?;
            }
            writer.finish()?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
