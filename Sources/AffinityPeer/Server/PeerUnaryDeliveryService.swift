import GRPCCore
import GRPCProtobuf

/// The peer service without `DeliverStream`, as a replica from before the stream serves it: only `Deliver`
/// and `Ping` are registered, so `DeliverStream` is answered `UNIMPLEMENTED`
/// (``PeerServerConfiguration/servesDeliverStream`` off).
struct PeerUnaryDeliveryService: RegistrableRPCService {
    let service: PeerDeliveryService

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        let service = self.service
        router.registerHandler(
            forMethod: Affinity_Peer_V1_PeerDelivery.Method.Deliver.descriptor,
            deserializer: ProtobufDeserializer<Affinity_Peer_V1_DeliverRequest>(),
            serializer: ProtobufSerializer<Affinity_Peer_V1_DeliverResponse>(),
            handler: { request, context in
                try await service.deliver(request: request, context: context)
            }
        )
        router.registerHandler(
            forMethod: Affinity_Peer_V1_PeerDelivery.Method.Ping.descriptor,
            deserializer: ProtobufDeserializer<Affinity_Peer_V1_PingRequest>(),
            serializer: ProtobufSerializer<Affinity_Peer_V1_PingResponse>(),
            handler: { request, context in
                try await service.ping(request: request, context: context)
            }
        )
    }
}
