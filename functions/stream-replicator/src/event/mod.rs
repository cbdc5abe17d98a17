//! Reading the Lambda event: [`wire`] reads the stream event's records one at a time in one
//! pass over the payload (DynamoDB JSON read by [`dynamo_json`]), and [`decode`] checks each
//! into a [`change::SourceChange`], its new image still raw JSON until planning needs it.
//! A batch with one invalid record is refused as a whole, before anything is written.

pub(crate) mod change;
pub(crate) mod decode;
pub(crate) mod dynamo_json;
pub(crate) mod wire;
