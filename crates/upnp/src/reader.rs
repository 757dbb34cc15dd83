//! A bounds-checked cursor over received bytes: every read returns an error instead of
//! panicking when the input is short.

use crate::UpnpError;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    pub(crate) fn bytes<const N: usize>(&mut self) -> Result<[u8; N], UpnpError> {
        let (head, rest) = self
            .buf
            .split_first_chunk::<N>()
            .ok_or_else(|| UpnpError::malformed(self.what, "truncated"))?;
        self.buf = rest;
        Ok(*head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, UpnpError> {
        Ok(u8::from_be_bytes(self.bytes::<1>()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, UpnpError> {
        Ok(u16::from_be_bytes(self.bytes::<2>()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, UpnpError> {
        Ok(u32::from_be_bytes(self.bytes::<4>()?))
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<(), UpnpError> {
        self.buf = self
            .buf
            .get(n..)
            .ok_or_else(|| UpnpError::malformed(self.what, "truncated"))?;
        Ok(())
    }

    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.buf
    }
}
