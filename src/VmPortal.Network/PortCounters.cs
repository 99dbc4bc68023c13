namespace VmPortal.Network;

/// <summary>
/// A switch port's counters. In: frames the device sent into the switch. Out: frames the device took. Dropped:
/// frames for the device that did not fit its queue. Errors: malformed frames from the device (runt, oversized,
/// bad source address), dropped.
/// </summary>
public readonly record struct PortCounters(long FramesIn, long BytesIn, long FramesOut, long BytesOut, long Dropped, long Errors);
