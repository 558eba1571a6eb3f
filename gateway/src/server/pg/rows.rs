//! Arrow batches as PostgreSQL `DataRow` messages, a column at a time.
//!
//! The generic encoder (`arrow_pg::encode_recordbatch`) looks up each value's
//! type, field metadata and format anew, goes through `rust_decimal` for every
//! numeric, and allocates every row. Here each column's encoder is chosen once
//! per result, every row of a batch is written into one buffer and handed out
//! as a slice of it, and numerics are written straight from their `i128`. A
//! column of a type this module does not write (or one the generic encoder
//! gives a special PostgreSQL type through field metadata) sends the whole
//! result through the generic encoder instead, so the two never disagree on a
//! type.
//!
//! The bytes are PostgreSQL's own: binary formats as `*_send` writes them
//! (numerics in canonical form, with the column's display scale, as
//! PostgreSQL's `numeric_send` does), text as `*_out` does for `DateStyle` ISO.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int16Array,
    Int32Array, Int64Array, LargeStringArray, RecordBatch, StringArray, StringViewArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Date32Type, Field, Int8Type, TimeUnit};
use datafusion_postgres::pgwire::api::Type;
use datafusion_postgres::pgwire::api::results::{FieldFormat, FieldInfo};
use datafusion_postgres::pgwire::messages::data::DataRow;
use datafusion_postgres::pgwire::types::format::FormatOptions;

/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
const PG_EPOCH_DAYS: i32 = 10_957;
/// The same in microseconds.
const PG_EPOCH_MICROS: i64 = PG_EPOCH_DAYS as i64 * 86_400_000_000;

/// How one column is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Utf8,
    LargeUtf8,
    Utf8View,
    Decimal(i8),
    Date,
    /// Microseconds, with or without a time zone (binary only).
    Timestamp,
}

/// The column encoders of one result, or `None` when a column needs the
/// generic encoder.
#[derive(Debug, Clone)]
pub struct RowEncoder {
    columns: Vec<(Kind, bool)>,
}

impl RowEncoder {
    /// Encoders for `fields` as described to the client in `pg_fields`.
    pub fn new(fields: &[Arc<Field>], pg_fields: &[FieldInfo], options: &FormatOptions) -> Option<Self> {
        if fields.len() != pg_fields.len() || fields.len() > i16::MAX as usize {
            return None;
        }
        let iso = options.date_style.trim_start().to_ascii_uppercase().starts_with("ISO");
        let columns = fields
            .iter()
            .zip(pg_fields)
            .map(|(field, pg)| {
                let binary = pg.format() == FieldFormat::Binary;
                let (kind, pg_type) = match field.data_type() {
                    DataType::Boolean => (Kind::Bool, Type::BOOL),
                    DataType::Int8 => (Kind::Int8, Type::INT2),
                    DataType::Int16 => (Kind::Int16, Type::INT2),
                    DataType::Int32 => (Kind::Int32, Type::INT4),
                    DataType::Int64 => (Kind::Int64, Type::INT8),
                    // PostgreSQL's float text has its own shortest-digits rules.
                    DataType::Float32 if binary => (Kind::Float32, Type::FLOAT4),
                    DataType::Float64 if binary => (Kind::Float64, Type::FLOAT8),
                    DataType::Utf8 => (Kind::Utf8, Type::TEXT),
                    DataType::LargeUtf8 => (Kind::LargeUtf8, Type::TEXT),
                    DataType::Utf8View => (Kind::Utf8View, Type::TEXT),
                    DataType::Decimal128(_, scale) if (0..=38).contains(scale) => {
                        (Kind::Decimal(*scale), Type::NUMERIC)
                    }
                    DataType::Date32 if binary || iso => (Kind::Date, Type::DATE),
                    DataType::Timestamp(TimeUnit::Microsecond, None) if binary => (Kind::Timestamp, Type::TIMESTAMP),
                    DataType::Timestamp(TimeUnit::Microsecond, Some(_)) if binary => {
                        (Kind::Timestamp, Type::TIMESTAMPTZ)
                    }
                    _ => return None,
                };
                // Metadata can make the generic encoder describe a column as
                // another type (`"char"`, `oid`): then it writes it too.
                (*pg.datatype() == pg_type).then_some((kind, binary))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self { columns })
    }

    /// Every row of `batch`, written into one buffer.
    pub fn encode(&self, batch: &RecordBatch) -> Vec<DataRow> {
        let columns: Vec<Column<'_>> = batch
            .columns()
            .iter()
            .zip(&self.columns)
            .map(|(array, (kind, binary))| Column::new(array, *kind, *binary))
            .collect();
        let rows = batch.num_rows();
        let field_count = columns.len() as i16;
        let mut buf = BytesMut::with_capacity(estimate(batch));
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            for column in &columns {
                column.write(row, &mut buf);
            }
            out.push(DataRow::new(buf.split(), field_count));
        }
        out
    }
}

/// Bytes a batch will take on the wire, roughly: enough that the buffer is
/// seldom grown.
fn estimate(batch: &RecordBatch) -> usize {
    let lengths = batch.num_rows() * batch.num_columns() * 4;
    let values: usize = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8View | DataType::Utf8 | DataType::LargeUtf8 => c.get_array_memory_size(),
            DataType::Decimal128(_, _) => c.len() * 16,
            _ => c.len() * 8,
        })
        .sum();
    lengths + values
}

/// A column, downcast once per batch.
enum Column<'a> {
    Bool(&'a BooleanArray, bool),
    Int8(&'a datafusion::arrow::array::PrimitiveArray<Int8Type>, bool),
    Int16(&'a Int16Array, bool),
    Int32(&'a Int32Array, bool),
    Int64(&'a Int64Array, bool),
    Float32(&'a Float32Array),
    Float64(&'a Float64Array),
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
    Decimal(&'a Decimal128Array, i8, bool),
    Date(&'a Date32Array, bool),
    Timestamp(&'a TimestampMicrosecondArray),
}

impl<'a> Column<'a> {
    fn new(array: &'a ArrayRef, kind: Kind, binary: bool) -> Self {
        match kind {
            Kind::Bool => Self::Bool(array.as_boolean(), binary),
            Kind::Int8 => Self::Int8(array.as_primitive(), binary),
            Kind::Int16 => Self::Int16(array.as_primitive(), binary),
            Kind::Int32 => Self::Int32(array.as_primitive(), binary),
            Kind::Int64 => Self::Int64(array.as_primitive(), binary),
            Kind::Float32 => Self::Float32(array.as_primitive()),
            Kind::Float64 => Self::Float64(array.as_primitive()),
            Kind::Utf8 => Self::Utf8(array.as_string()),
            Kind::LargeUtf8 => Self::LargeUtf8(array.as_string()),
            Kind::Utf8View => Self::Utf8View(array.as_string_view()),
            Kind::Decimal(scale) => Self::Decimal(array.as_primitive(), scale, binary),
            Kind::Date => Self::Date(array.as_primitive::<Date32Type>(), binary),
            Kind::Timestamp => Self::Timestamp(array.as_primitive()),
        }
    }

    fn is_null(&self, row: usize) -> bool {
        match self {
            Self::Bool(a, _) => a.is_null(row),
            Self::Int8(a, _) => a.is_null(row),
            Self::Int16(a, _) => a.is_null(row),
            Self::Int32(a, _) => a.is_null(row),
            Self::Int64(a, _) => a.is_null(row),
            Self::Float32(a) => a.is_null(row),
            Self::Float64(a) => a.is_null(row),
            Self::Utf8(a) => a.is_null(row),
            Self::LargeUtf8(a) => a.is_null(row),
            Self::Utf8View(a) => a.is_null(row),
            Self::Decimal(a, _, _) => a.is_null(row),
            Self::Date(a, _) => a.is_null(row),
            Self::Timestamp(a) => a.is_null(row),
        }
    }

    /// The value's length (-1 for NULL), then its bytes.
    fn write(&self, row: usize, buf: &mut BytesMut) {
        if self.is_null(row) {
            buf.put_i32(-1);
            return;
        }
        match self {
            Self::Bool(a, true) => fixed(buf, &[u8::from(a.value(row))]),
            Self::Bool(a, false) => fixed(buf, if a.value(row) { b"t" } else { b"f" }),
            Self::Int8(a, true) => fixed(buf, &i16::from(a.value(row)).to_be_bytes()),
            Self::Int16(a, true) => fixed(buf, &a.value(row).to_be_bytes()),
            Self::Int32(a, true) => fixed(buf, &a.value(row).to_be_bytes()),
            Self::Int64(a, true) => fixed(buf, &a.value(row).to_be_bytes()),
            Self::Int8(a, false) => integer_text(buf, i64::from(a.value(row))),
            Self::Int16(a, false) => integer_text(buf, i64::from(a.value(row))),
            Self::Int32(a, false) => integer_text(buf, i64::from(a.value(row))),
            Self::Int64(a, false) => integer_text(buf, a.value(row)),
            Self::Float32(a) => fixed(buf, &a.value(row).to_bits().to_be_bytes()),
            Self::Float64(a) => fixed(buf, &a.value(row).to_bits().to_be_bytes()),
            Self::Utf8(a) => bytes(buf, a.value(row).as_bytes()),
            Self::LargeUtf8(a) => bytes(buf, a.value(row).as_bytes()),
            Self::Utf8View(a) => bytes(buf, a.value(row).as_bytes()),
            Self::Decimal(a, scale, true) => numeric_binary(buf, a.value(row), *scale),
            Self::Decimal(a, scale, false) => numeric_text(buf, a.value(row), *scale),
            Self::Date(a, true) => fixed(buf, &a.value(row).wrapping_sub(PG_EPOCH_DAYS).to_be_bytes()),
            Self::Date(a, false) => date_text(buf, a.value(row)),
            Self::Timestamp(a) => fixed(buf, &a.value(row).wrapping_sub(PG_EPOCH_MICROS).to_be_bytes()),
        }
    }
}

fn fixed(buf: &mut BytesMut, value: &[u8]) {
    buf.put_i32(value.len() as i32);
    buf.put_slice(value);
}

fn bytes(buf: &mut BytesMut, value: &[u8]) {
    buf.put_i32(i32::try_from(value.len()).unwrap_or(i32::MAX));
    buf.put_slice(value);
}

/// Writes a length placeholder, then whatever `write` puts, then the length.
fn measured(buf: &mut BytesMut, write: impl FnOnce(&mut BytesMut)) {
    let at = buf.len();
    buf.put_i32(0);
    write(buf);
    let len = (buf.len() - at - 4) as i32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn integer_text(buf: &mut BytesMut, value: i64) {
    let mut digits = [0u8; 20];
    let mut n = value.unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let negative = value < 0;
    buf.put_i32((digits.len() - i + usize::from(negative)) as i32);
    if negative {
        buf.put_u8(b'-');
    }
    buf.put_slice(&digits[i..]);
}

/// `numeric_out`: every digit of the scale, a leading `0` before the point.
fn numeric_text(buf: &mut BytesMut, value: i128, scale: i8) {
    measured(buf, |buf| {
        let digits = value.unsigned_abs().to_string();
        let scale = scale as usize;
        if value < 0 {
            buf.put_u8(b'-');
        }
        if scale == 0 {
            buf.put_slice(digits.as_bytes());
        } else if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            buf.put_slice(int.as_bytes());
            buf.put_u8(b'.');
            buf.put_slice(frac.as_bytes());
        } else {
            buf.put_slice(b"0.");
            buf.put_bytes(b'0', scale - digits.len());
            buf.put_slice(digits.as_bytes());
        }
    });
}

/// `numeric_send` of `value / 10^scale`: base-10000 digits with no leading or
/// trailing zero digit, the weight of the first, the sign, the display scale.
fn numeric_binary(buf: &mut BytesMut, value: i128, scale: i8) {
    let scale = scale.max(0) as u32;
    let magnitude = value.unsigned_abs();
    // Align the fraction to whole base-10000 digits.
    let pad = (4 - scale % 4) % 4;
    let frac_digits = (scale + pad) / 4;
    // i128's 39 decimal digits plus 3 of padding fit 11 groups.
    let mut groups = [0i16; 12];
    let mut n = 0;
    match magnitude.checked_mul(10u128.pow(pad)) {
        Some(mut rest) => {
            while rest > 0 {
                groups[n] = (rest % 10_000) as i16;
                rest /= 10_000;
                n += 1;
            }
        }
        // Only near 38 digits with a scale that is not a multiple of 4.
        None => {
            let mut digits = magnitude.to_string().into_bytes();
            digits.resize(digits.len() + pad as usize, b'0');
            for chunk in digits.rchunks(4) {
                groups[n] = chunk.iter().fold(0i16, |g, d| g * 10 + i16::from(d - b'0'));
                n += 1;
            }
        }
    }
    // groups[0..n] least significant first; groups below index frac_digits are the fraction.
    let mut low = 0;
    while low < n && groups[low] == 0 {
        low += 1;
    }
    let count = n - low;
    let weight = n as i32 - frac_digits as i32 - 1;
    measured(buf, |buf| {
        if count == 0 {
            buf.put_i16(0);
            buf.put_i16(0);
            buf.put_u16(0);
        } else {
            buf.put_i16(count as i16);
            buf.put_i16(weight as i16);
            buf.put_u16(if value < 0 { 0x4000 } else { 0 });
        }
        buf.put_u16(scale as u16);
        for g in groups[low..n].iter().rev() {
            buf.put_i16(*g);
        }
    });
}

/// `date_out` with `DateStyle` ISO: `YYYY-MM-DD`, ` BC` before year 1.
fn date_text(buf: &mut BytesMut, days: i32) {
    measured(buf, |buf| {
        let (year, month, day) = civil(days);
        let (shown, bc) = if year <= 0 { (1 - year, true) } else { (year, false) };
        let _ = std::fmt::Write::write_fmt(
            &mut Writer(buf),
            format_args!("{shown:04}-{month:02}-{day:02}{}", if bc { " BC" } else { "" }),
        );
    });
}

/// The proleptic Gregorian (year, month, day) of a day count from 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil(days: i32) -> (i64, u32, u32) {
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

struct Writer<'a>(&'a mut BytesMut);

impl std::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests;
