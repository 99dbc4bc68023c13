namespace VmPortal.Network;

/// <summary>
/// What a network's services saw: connections (TCP) and datagrams (UDP/ICMP) the outbound policy refused inside the
/// NAT (they never left the process), connections the host side refused, TCP connections opened, DHCP/DNS requests
/// that were malformed, and frames the services could not use.
/// </summary>
public readonly record struct NatCounters(long RefusedByPolicy, long RefusedByHost, long TcpConnections, long DhcpMalformed,
    long DnsMalformed, long FramesIgnored);
