//! Byte-level helpers of the decoder: finding a line end fast, and decoding
//! UTF-8 the way browsers do when it is invalid.

/// The first CR or LF. Most lines of a market-data stream are short (`id`,
/// `event`, the blank line), where eight bytes at a time in a register beat a
/// SIMD search set-up; longer lines go to `memchr`.
#[inline]
pub(crate) fn find_line_end(hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while at + 8 <= hay.len() && at < 32 {
        let word = u64::from_le_bytes(hay[at..at + 8].try_into().unwrap_or([0; 8]));
        // A byte equal to LF (CR) becomes zero after the XOR; the lowest
        // flagged byte is exact (borrows only flag bytes above a zero).
        let lf = word ^ (LO * u64::from(b'\n'));
        let cr = word ^ (LO * u64::from(b'\r'));
        let hit = (lf.wrapping_sub(LO) & !lf | cr.wrapping_sub(LO) & !cr) & HI;
        if hit != 0 {
            return Some(at + hit.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    memchr::memchr2(b'\n', b'\r', &hay[at..]).map(|i| at + i)
}

/// Appends `bytes` decoded as UTF-8 with U+FFFD for each invalid sequence
/// (the maximal-subpart rule, as browsers do). Returns the bytes of a
/// character left unfinished at the end, to be completed by the next push.
pub(crate) fn decode_lossy<'a>(out: &mut String, mut bytes: &'a [u8]) -> &'a [u8] {
    loop {
        match std::str::from_utf8(bytes) {
            Ok(valid) => {
                out.push_str(valid);
                return &[];
            }
            Err(e) => {
                let (valid, rest) = bytes.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        out.push('\u{FFFD}');
                        bytes = &rest[n..];
                    }
                    None => return rest,
                }
            }
        }
    }
}
