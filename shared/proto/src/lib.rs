//! Rust types generated from the workspace's `proto/` folder. Nothing here is written by hand
//! except this module tree; change the `.proto` files instead.

/// The encoded `FileDescriptorSet` of every Xueji proto file, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/xueji_descriptor.bin"));

pub mod identity {
    pub mod v1 {
        tonic::include_proto!("xueji.identity.v1");
    }
}

pub mod schools {
    pub mod v1 {
        tonic::include_proto!("xueji.schools.v1");
    }
}

pub mod national {
    pub mod v1 {
        tonic::include_proto!("xueji.national.v1");
    }
}

pub mod transfers {
    pub mod v1 {
        tonic::include_proto!("xueji.transfers.v1");
    }
}

pub mod stats {
    pub mod v1 {
        tonic::include_proto!("xueji.stats.v1");
    }
}

pub mod node {
    pub mod v1 {
        tonic::include_proto!("xueji.node.v1");
    }
}
