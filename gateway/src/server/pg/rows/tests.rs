//! The column-at-a-time encoder against arrow_pg's, byte for byte.

use std::sync::Arc;

use datafusion::arrow::array::{
    BooleanArray, Date32Array, Decimal128Array, Float64Array, Int8Array, Int16Array, Int32Array, Int64Array,
    RecordBatch, StringArray, StringViewArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion_postgres::arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use datafusion_postgres::pgwire::api::portal::Format;
use datafusion_postgres::pgwire::types::format::FormatOptions;

use super::*;

fn batch() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("b", DataType::Boolean, true),
        Field::new("i1", DataType::Int8, true),
        Field::new("i2", DataType::Int16, true),
        Field::new("i4", DataType::Int32, true),
        Field::new("i8", DataType::Int64, true),
        Field::new("f8", DataType::Float64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("v", DataType::Utf8View, true),
        Field::new("d", DataType::Decimal128(15, 2), true),
        Field::new("dz", DataType::Decimal128(20, 0), true),
        Field::new("day", DataType::Date32, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(BooleanArray::from(vec![
            Some(true),
            Some(false),
            None,
            Some(true),
            Some(false),
            Some(true),
        ])),
        Arc::new(Int8Array::from(vec![
            Some(-128),
            Some(0),
            None,
            Some(127),
            Some(1),
            Some(-1),
        ])),
        Arc::new(Int16Array::from(vec![
            Some(i16::MIN),
            Some(0),
            None,
            Some(i16::MAX),
            Some(7),
            Some(-7),
        ])),
        Arc::new(Int32Array::from(vec![
            Some(i32::MIN),
            Some(0),
            None,
            Some(i32::MAX),
            Some(10),
            Some(-10),
        ])),
        Arc::new(Int64Array::from(vec![
            Some(i64::MIN),
            Some(0),
            None,
            Some(i64::MAX),
            Some(100),
            Some(-9),
        ])),
        Arc::new(Float64Array::from(vec![
            Some(1.5),
            Some(-0.0),
            None,
            Some(f64::MAX),
            Some(f64::NAN),
            Some(1e-300),
        ])),
        Arc::new(StringArray::from(vec![
            Some("a"),
            Some(""),
            None,
            Some("é ü"),
            Some("x'y"),
            Some("long text value"),
        ])),
        Arc::new(StringViewArray::from(vec![
            Some("short"),
            Some(""),
            None,
            Some("a string longer than twelve bytes"),
            Some("ß"),
            Some("z"),
        ])),
        Arc::new(
            Decimal128Array::from(vec![
                Some(12_345),
                Some(0),
                None,
                Some(-5),
                Some(100_000_000),
                Some(999_999_999_999_999),
            ])
            .with_precision_and_scale(15, 2)
            .expect("decimal"),
        ),
        Arc::new(
            Decimal128Array::from(vec![
                Some(10_000),
                Some(0),
                None,
                Some(-1),
                Some(99_990_000),
                Some(12_345_678_901_234_567_890),
            ])
            .with_precision_and_scale(20, 0)
            .expect("decimal"),
        ),
        Arc::new(Date32Array::from(vec![
            Some(0),
            Some(10_957),
            None,
            Some(-719_162),
            Some(-800_000),
            Some(2_932_896),
        ])),
        Arc::new(TimestampMicrosecondArray::from(vec![
            Some(0),
            Some(946_684_800_000_000),
            None,
            Some(-1),
            Some(1_700_000_000_123_456),
            Some(86_400_000_000),
        ])),
    ];
    RecordBatch::try_new(schema, columns).expect("batch")
}

fn encoders(batch: &RecordBatch, format: &Format) -> (Arc<Vec<FieldInfo>>, RowEncoder) {
    let options = FormatOptions::default();
    let fields = Arc::new(
        arrow_schema_to_pg_fields(batch.schema_ref(), format, Some(Arc::new(options.clone()))).expect("fields"),
    );
    let encoder = RowEncoder::new(batch.schema_ref().fields(), &fields, &options).expect("every column is ours");
    (fields, encoder)
}

/// Each row's values, split on their length prefixes.
fn values(row: &DataRow) -> Vec<Option<Vec<u8>>> {
    let mut data = &row.data[..];
    let mut out = Vec::new();
    for _ in 0..row.field_count {
        let len = i32::from_be_bytes(data[..4].try_into().expect("length"));
        data = &data[4..];
        if len < 0 {
            out.push(None);
        } else {
            out.push(Some(data[..len as usize].to_vec()));
            data = &data[len as usize..];
        }
    }
    assert!(data.is_empty(), "nothing after the last value");
    out
}

/// PostgreSQL's binary numeric as `numeric_out` would print it.
fn numeric_from_binary(bytes: &[u8]) -> String {
    let word = |i: usize| i16::from_be_bytes([bytes[2 * i], bytes[2 * i + 1]]);
    let (count, weight, sign, scale) = (word(0) as usize, i32::from(word(1)), word(2) as u16, word(3) as usize);
    assert_eq!(bytes.len(), 8 + 2 * count);
    let digits: Vec<i16> = (0..count).map(|i| word(4 + i)).collect();
    assert!(digits.iter().all(|d| (0..10_000).contains(d)), "base-10000 digits");
    assert!(
        digits.first() != Some(&0) && digits.last() != Some(&0),
        "canonical: {digits:?}"
    );
    let mut int = String::new();
    for w in 0..=weight.max(0) {
        let d = usize::try_from(w)
            .ok()
            .and_then(|w| digits.get(w))
            .copied()
            .unwrap_or(0);
        if weight >= 0 {
            int.push_str(&format!("{d:04}"));
        }
    }
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let mut frac = String::new();
    let mut w = weight + 1;
    while frac.len() < scale {
        let d = usize::try_from(w)
            .ok()
            .and_then(|w| digits.get(w))
            .copied()
            .unwrap_or(0);
        frac.push_str(&format!("{d:04}"));
        w += 1;
    }
    frac.truncate(scale);
    let sign = if sign == 0x4000 { "-" } else { "" };
    if scale == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

#[test]
fn binary_rows_are_the_generic_encoders_bytes_and_numerics_are_canonical() {
    let batch = batch();
    let (fields, encoder) = encoders(&batch, &Format::UnifiedBinary);
    let ours: Vec<_> = encoder.encode(&batch).iter().map(values).collect();
    let theirs: Vec<_> = encode_recordbatch(Arc::clone(&fields), batch.clone())
        .map(|r| values(&r.expect("encodes")))
        .collect();
    assert_eq!(ours.len(), 6);
    let decimals = [8, 9];
    // The generic encoder writes an Int8 as one byte, for a column it
    // describes as int2 (two bytes): a client decoding int2 fails on it.
    let int8 = 1;
    assert_eq!(fields[int8].datatype(), &Type::INT2);
    for (r, (mine, generic)) in ours.iter().zip(&theirs).enumerate() {
        let value = batch.column(int8).as_primitive::<Int8Type>();
        let expected = (!value.is_null(r)).then(|| i16::from(value.value(r)).to_be_bytes().to_vec());
        assert_eq!(mine[int8], expected, "row {r}: int2 in two bytes");
        for c in 0..batch.num_columns() {
            if decimals.contains(&c) || c == int8 {
                continue;
            }
            assert_eq!(
                mine[c],
                generic[c],
                "row {r}, column {}",
                batch.schema().field(c).name()
            );
        }
        for c in decimals {
            let array = batch
                .column(c)
                .as_primitive::<datafusion::arrow::datatypes::Decimal128Type>();
            match &mine[c] {
                None => assert!(array.is_null(r)),
                Some(bytes) => assert_eq!(numeric_from_binary(bytes), array.value_as_string(r), "row {r}"),
            }
        }
    }
}

#[test]
fn text_rows_are_the_generic_encoders_bytes() {
    // Floats and timestamps are left to the generic encoder in text:
    // PostgreSQL's shortest-digits floats and its time zone rules are its own.
    let batch = batch();
    let keep: Vec<usize> = (0..batch.num_columns()).filter(|c| *c != 5 && *c != 11).collect();
    let batch = batch.project(&keep).expect("projects");
    let (fields, encoder) = encoders(&batch, &Format::UnifiedText);
    let ours: Vec<_> = encoder.encode(&batch).iter().map(values).collect();
    let theirs: Vec<_> = encode_recordbatch(Arc::clone(&fields), batch.clone())
        .map(|r| values(&r.expect("encodes")))
        .collect();
    // Before year 1 the generic encoder writes chrono's `-0221`, not
    // PostgreSQL's `0222 BC`: that one cell is PostgreSQL's below.
    let bc = (4, 9);
    for (r, (mine, generic)) in ours.iter().zip(&theirs).enumerate() {
        for c in 0..batch.num_columns() {
            if (r, c) != bc {
                assert_eq!(
                    mine[c],
                    generic[c],
                    "row {r}, column {}",
                    batch.schema().field(c).name()
                );
            }
        }
    }
    let text = |r: usize, c: usize| String::from_utf8(ours[r][c].clone().expect("not null")).expect("utf-8");
    assert_eq!(text(0, 7), "123.45");
    assert_eq!(text(3, 7), "-0.05");
    assert_eq!(text(1, 7), "0.00");
    assert_eq!(text(0, 9), "1970-01-01");
    assert_eq!(text(3, 9), "0001-01-01");
    // The same day: the year astronomers number -221 is 222 BC.
    assert_eq!(text(4, 9), "0222-09-04 BC");
    assert_eq!(theirs[4][9].as_deref(), Some(&b"-0221-09-04"[..]));
}

#[test]
fn a_column_the_generic_encoder_types_specially_is_left_to_it() {
    let batch = batch();
    let options = FormatOptions::default();
    let fields = arrow_schema_to_pg_fields(
        batch.schema_ref(),
        &Format::UnifiedText,
        Some(Arc::new(options.clone())),
    )
    .expect("fields");
    assert!(
        RowEncoder::new(batch.schema_ref().fields(), &fields, &options).is_none(),
        "text floats"
    );
    let mut german = FormatOptions::default();
    german.date_style = "German, DMY".into();
    let dates = batch.project(&[10]).expect("projects");
    let fields = arrow_schema_to_pg_fields(dates.schema_ref(), &Format::UnifiedText, Some(Arc::new(german.clone())))
        .expect("fields");
    assert!(
        RowEncoder::new(dates.schema_ref().fields(), &fields, &german).is_none(),
        "DateStyle German"
    );
}

#[test]
fn widest_decimals_are_written_whole() {
    let widest = 10_i128.pow(38) - 1;
    let values = [widest, -widest, 1, -1, 10_i128.pow(37)];
    for scale in [0i8, 1, 4, 5, 38] {
        for v in values {
            let mut buf = BytesMut::new();
            numeric_binary(&mut buf, v, scale);
            let array = Decimal128Array::from(vec![v])
                .with_precision_and_scale(38, scale)
                .expect("decimal");
            assert_eq!(
                numeric_from_binary(&buf[4..]),
                array.value_as_string(0),
                "{v} scale {scale}"
            );
            let mut text = BytesMut::new();
            numeric_text(&mut text, v, scale);
            assert_eq!(
                std::str::from_utf8(&text[4..]).expect("utf-8"),
                array.value_as_string(0)
            );
        }
    }
}
