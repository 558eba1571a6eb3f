//! The `hash` mask: HMAC-SHA-256 of a value's text form under the mesh's
//! secret key, as lower-case hex.
//!
//! Keyed, so that nobody without the key can recompute a masked value from a
//! guess (an unsalted SHA-256 of `Customer#000000042` is one SQL expression
//! away); the same key for the whole mesh, so that equal raw values still give
//! equal masked values in every product, and masked columns still join. The
//! function is never registered in a session: SQL cannot call it, only the
//! policy barrier does, and its key never appears in a plan or a message.

use std::sync::Arc;

use arrow::array::{Array, StringBuilder};
use arrow::datatypes::DataType;
use datafusion::common::cast::as_string_array;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The keyed hash, for one key.
#[derive(PartialEq, Eq, Hash)]
pub struct MaskHash {
    key: Arc<[u8]>,
    signature: Signature,
}

impl std::fmt::Debug for MaskHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MaskHash")
    }
}

impl MaskHash {
    /// The function under `key` (the bundle's mask key).
    pub fn udf(key: &[u8]) -> Arc<ScalarUDF> {
        Arc::new(ScalarUDF::new_from_impl(Self {
            key: Arc::from(key),
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
        }))
    }

    /// The hex digest of one value.
    pub fn digest(key: &[u8], value: &str) -> String {
        let mut mac = keyed(key);
        mac.update(value.as_bytes());
        hex_of(&mac.finalize().into_bytes())
    }
}

fn keyed(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length: this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

fn hex_of(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

impl ScalarUDFImpl for MaskHash {
    fn name(&self) -> &str {
        "mask_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [value] = args.args.as_slice() else {
            return Err(DataFusionError::Internal("mask_hash takes one argument".into()));
        };
        let is_scalar = matches!(value, ColumnarValue::Scalar(_));
        let values = value.to_array(args.number_rows)?;
        let values = as_string_array(&values)?;
        let base = keyed(&self.key);
        let mut out = StringBuilder::with_capacity(values.len(), values.len() * 64);
        for value in values {
            match value {
                Some(v) => {
                    let mut mac = base.clone();
                    mac.update(v.as_bytes());
                    out.append_value(hex_of(&mac.finalize().into_bytes()));
                }
                None => out.append_null(),
            }
        }
        let array: Arc<dyn Array> = Arc::new(out.finish());
        if is_scalar {
            Ok(ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(
                &array, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(array))
        }
    }
}
