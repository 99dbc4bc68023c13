namespace VmPortal.Network;

/// <summary>Where a NAT network's guests may connect through the host's sockets.</summary>
public enum OutboundPolicy
{
    /// <summary>Only the host's loopback, through the gateway address (10.0.2.2:PORT → 127.0.0.1:PORT). The default.</summary>
    Loopback,
    /// <summary>Nothing: every connection is refused inside the NAT.</summary>
    Deny,
    /// <summary>Any address the host can reach (the admin's deliberate choice; never used by tests).</summary>
    Allow,
}
