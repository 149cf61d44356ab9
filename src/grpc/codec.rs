//! The protobuf codec of every service. It is prost's, except that a request message that
//! does not decode (bad UTF-8, a truncated length, nesting past the recursion limit) is the
//! client's fault: INVALID_ARGUMENT, where prost's codec answers INTERNAL.

use tonic::{
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
    Status,
};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Named by `build.rs` as the codec of the generated servers and clients.
#[derive(Debug, Clone)]
pub struct ProtobufCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for ProtobufCodec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> Codec for ProtobufCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ClientBytesDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        ClientBytesDecoder(self.0.decoder())
    }
}

/// Decodes with prost and reports undecodable bytes as INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct ClientBytesDecoder<U>(ProstDecoder<U>);

impl<U: prost::Message + Default> Decoder for ClientBytesDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buffer: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buffer).map_err(|status| {
            Status::invalid_argument(crate::domain::bounded_message(format!(
                "the message is not valid protobuf: {}",
                status.message()
            )))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
