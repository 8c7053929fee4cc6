"""Signal layer: signallers in a Kademlia DHT that relay offers and hand out contacts."""
