namespace VmPortal.Network;

/// <summary>
/// What a network's services saw: connections (TCP) and datagrams (UDP/ICMP) the outbound policy refused inside the
/// NAT (they never left the process), connections the host side refused, TCP connections opened, DHCP/DNS requests
/// that were malformed, frames the services could not use, UDP flows opened (each a host socket), UDP datagrams the
/// host answered with "port unreachable" (passed on to the guest as ICMP) and UDP datagrams dropped (send errors), and TCP data resent to guests at their third
/// duplicate ACK (fast retransmit: a frame to the guest was lost); TCP data segments from guests that arrived ahead of
/// the next expected byte (a segment before them was lost) and ones that repeated data already received (the guest
/// retransmitted); IP datagrams reassembled from a guest's fragments, and fragments dropped (overlap, timeout, bounds:
/// <see cref="Ipv4Reassembly"/>).
/// </summary>
public readonly record struct NatCounters(long RefusedByPolicy, long RefusedByHost, long TcpConnections, long DhcpMalformed,
    long DnsMalformed, long FramesIgnored, long UdpFlows = 0, long UdpPortUnreachable = 0, long UdpDropped = 0,
    long TcpFastRetransmits = 0, long TcpOutOfOrder = 0, long TcpDuplicates = 0,
    long IpReassembled = 0, long IpFragmentsDropped = 0);
