//! Python's `str(float)`, for log lines that print sizes exactly as
//! grokmirror does (`3.4332275390625e-05`, `2.0`).

/// Format `x` the way Python's `repr(float)` does: the shortest digits
/// that round-trip, in positional notation for exponents from -4 to 15,
/// in scientific notation (`e-05`, `e+16`) otherwise, and always with a
/// `.0` or an exponent so it reads as a float.
pub fn py_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    if (-4..16).contains(&exp) {
        let plain = format!("{x}");
        if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::py_repr;

    #[test]
    fn like_python() {
        // Values checked against python3 -c 'print(x)'.
        assert_eq!(py_repr(36.0 / 1024.0 / 1024.0), "3.4332275390625e-05");
        assert_eq!(py_repr(2.0), "2.0");
        assert_eq!(py_repr(0.5), "0.5");
        assert_eq!(py_repr(0.0001), "0.0001");
        assert_eq!(py_repr(0.00001), "1e-05");
        assert_eq!(py_repr(1e16), "1e+16");
        assert_eq!(py_repr(123456789012345.6), "123456789012345.6");
        assert_eq!(py_repr(2.5e-7), "2.5e-07");
        assert_eq!(py_repr(3.0517578125), "3.0517578125");
        assert_eq!(py_repr(0.0), "0.0");
    }
}
