import JsSIP from 'jssip';
window.JsSIP = JsSIP;
