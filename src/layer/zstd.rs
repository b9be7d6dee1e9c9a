//! zstd frames (RFC 8878), one a chunk. A zstd stream may hold any number
//! of frames one after another (section 3.1), and every reader decodes
//! them as one.

use std::io;

use ::zstd::bulk::Compressor;
use ::zstd::stream::raw::CParameter;
use ::zstd::zstd_safe::compress_bound;

pub(super) struct Encoder(Compressor<'static>);

impl Encoder {
    pub(super) fn new(level: u8) -> io::Result<Encoder> {
        let mut c = Compressor::new(i32::from(level))?;
        // Each frame ends with a checksum of its content, as zstd(1)
        // writes by default, so damage is caught on the way in; each
        // header holds its content size (the default).
        c.set_parameter(CParameter::ChecksumFlag(true))?;
        Ok(Encoder(c))
    }

    pub(super) fn encode(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        out.clear();
        out.reserve(compress_bound(chunk.len()));
        self.0.compress_to_buffer(chunk, out)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn frames_concatenate_and_carry_a_checksum() {
        let mut e = Encoder::new(3).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        e.encode(b"hello, ", &mut a).unwrap();
        e.encode(b"world", &mut b).unwrap();
        // Magic, then the frame header descriptor: bit 2 is the checksum
        // flag, bits 6-7 and 5 say the content size is there.
        assert_eq!(a[..4], [0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(a[4] & 0b100, 0b100, "checksum flag");
        let mut decoded = String::new();
        ::zstd::stream::read::Decoder::new(&[a, b].concat()[..])
            .unwrap()
            .read_to_string(&mut decoded)
            .unwrap();
        assert_eq!(decoded, "hello, world");
    }

    #[test]
    fn empty_chunk_is_a_valid_frame() {
        let mut out = vec![1, 2, 3];
        Encoder::new(3).unwrap().encode(b"", &mut out).unwrap();
        assert_eq!(::zstd::decode_all(&out[..]).unwrap(), b"");
    }
}
