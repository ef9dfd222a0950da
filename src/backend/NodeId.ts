import { Context, Layer } from "effect"
import * as Crypto from "node:crypto"

/** Identifies this process among the nodes of a cluster: where its sessions live and its direct messages go. */
export class NodeId extends Context.Tag("effect-chat/NodeId")<NodeId, string>() {
  static layer = Layer.sync(NodeId, () => Crypto.randomUUID())
}
